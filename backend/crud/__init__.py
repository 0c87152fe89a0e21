"""The generated REST API: schemas, the async CRUDGenerator, query parsing, error mapping."""
