#!/bin/sh
# Runs before a deploy: refuse to ship a tree that does not validate.
exec agentsync validate
