#!/bin/sh
# busybox udhcpc's event script for the virtual phones: configure the leased
# address as a phone would, and record what the server sent (ip, mask, router,
# opt150 = option 150 in hex, tftp = option 66) in $TF_DHCP_RECORD.
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        env | grep -E '^(ip|mask|router|serverid|lease|opt150|tftp|ntpsrv|dns)=' > "$TF_DHCP_RECORD"
        ;;
esac
exit 0
