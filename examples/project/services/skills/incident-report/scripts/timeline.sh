#!/bin/sh
# Prints the timeline of an incident from the on-call log, oldest first.
set -eu
grep -h -- "$1" "${ONCALL_LOG:-oncall.log}" | sort
