"""Cisco 79x1 SIP provisioning: inventory, rendering, TFTP and re-sync."""
