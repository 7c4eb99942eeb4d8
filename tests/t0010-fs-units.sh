#!/bin/bash
# fs/'s pure functions - value parsing for mount options and /.ctl writes,
# the /.ctl formatters - tested directly by tests/helpers/pf-fs-unit.c.
. "$(dirname "$0")/lib.sh"
[ -x "$PF_HELPERS/pf-fs-unit" ] || pf_skip_all "pf-fs-unit is not built"
"$PF_HELPERS/pf-fs-unit"
