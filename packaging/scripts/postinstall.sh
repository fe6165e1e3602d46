#!/bin/sh
# Make systemd see the new or changed unit. The service is not enabled or
# started here: the operator sets brokers first (see the README).
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
