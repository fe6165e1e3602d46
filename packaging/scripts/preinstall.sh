#!/bin/sh
# Create the service user before the files owned by its group are laid down.
# RHEL 8's rpm does not run systemd-sysusers, so do what sysusers.conf says.
getent group inferops >/dev/null 2>&1 || groupadd -r inferops
getent passwd inferops >/dev/null 2>&1 || \
	useradd -r -g inferops -d /var/lib/inferops -s /sbin/nologin -c "inferops inference worker" inferops
exit 0
