#!/bin/sh
# Container start-up: migrate the database to head, then serve on all interfaces.
set -e
tablestack migrate
exec tablestack serve --host 0.0.0.0 --port "${PORT:-8000}" "$@"
