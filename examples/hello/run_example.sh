#!/usr/bin/env bash
# Runs an example binary; the test passes if it exits 0 within the time limit.
exec timeout 60 "$1"
