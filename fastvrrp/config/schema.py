"""Keyword tables: what each global_defs keyword takes, and what fastvrrp does not implement.

Kinds (the reader turns each into a typed value):
  flag            no argument -> True
  bool            optional <BOOL> (on|off|true|false|yes|no), none -> True
  int LO HI       one integer in [LO, HI]
  secs LO HI      one time in seconds (fraction allowed) in [LO, HI] -> integer ms
  str             exactly one word
  words           one or more words -> tuple
  optwords        zero or more words -> tuple
  script          COMMAND [user [group]] -> Script
  block           a `{ }` block of single words -> tuple
  ip              one address
"""

from __future__ import annotations

# keyword: (kind, lo, hi).  lo/hi only for int and secs.
GLOBAL_KEYWORDS: dict[str, tuple] = {
    # --- modelled as GlobalDefs fields (see global_defs.GLOBAL_FIELDS) ---
    "router_id": ("str",),
    "vrrp_version": ("int", 2, 3),
    "vrrp_mcast_group4": ("ip",),
    "vrrp_mcast_group6": ("ip",),
    "vrrp_garp_master_delay": ("secs", 0, 86400),
    "vrrp_garp_master_repeat": ("int", 1, 65535),
    "vrrp_garp_lower_prio_delay": ("secs", 0, 86400),
    "vrrp_garp_lower_prio_repeat": ("int", 1, 65535),
    "vrrp_garp_master_refresh": ("secs", 0, 86400),
    "vrrp_garp_master_refresh_repeat": ("int", 1, 65535),
    "vrrp_garp_interval": ("secs", 0, 1),
    "vrrp_gna_interval": ("secs", 0, 1),
    "vrrp_min_garp": ("bool",),
    "vrrp_lower_prio_no_advert": ("bool",),
    "vrrp_higher_prio_send_advert": ("bool",),
    "vrrp_strict": ("flag",),
    # fastvrrp's own: every adjustment (a problem keepalived works around) refuses the file instead.
    # keepalived 2.2.7 logs "Unknown keyword 'fastvrrp_strict_config'" for it and starts the file.
    "fastvrrp_strict_config": ("bool",),
    "vrrp_skip_check_adv_addr": ("bool",),
    "vrrp_check_unicast_src": ("flag",),
    "vrrp_startup_delay": ("secs", 0, 3600),
    "vrrp_down_timer_adverts": ("int", 1, 100),
    "script_user": ("words",),
    "enable_script_security": ("flag",),
    "vrrp_notify_fifo": ("script",),
    "vrrp_notify_fifo_script": ("script",),
    "notify_fifo": ("script",),
    "notify_fifo_script": ("script",),
    "notification_email": ("block",),
    "notification_email_from": ("str",),
    "dynamic_interfaces": ("optwords",),
    "vmac_prefix": ("str",),
    # --- accepted with a typed value, kept in GlobalDefs.other ---
    "net_namespace": ("str",),
    "namespace_with_ipsets": ("flag",),
    "instance": ("str",),
    "use_pid_dir": ("flag",),
    "linkbeat_use_polling": ("flag",),
    "child_wait_time": ("int", 0, 86400),
    "tmp_config_directory": ("str",),
    "config_save_dir": ("str",),
    "process_names": ("flag",),
    "process_name": ("str",),
    "vrrp_process_name": ("str",),
    "checker_process_name": ("str",),
    "bfd_process_name": ("str",),
    "startup_script": ("script",),
    "startup_script_timeout": ("optwords",),  # read by global_defs._process_setting, as the next ones
    "shutdown_script": ("script",),
    "shutdown_script_timeout": ("optwords",),
    "default_interface": ("str",),
    "vrrp_garp_extra_if": ("words",),
    "vrrp_garp_extra_if_vmac": ("words",),
    "disable_local_igmp": ("flag",),
    "vrrp_notify_priority_changes": ("bool",),
    "max_auto_priority": ("optwords",),
    "min_auto_priority_delay": ("optwords",),
    "vrrp_priority": ("optwords",),
    "vrrp_no_swap": ("flag",),
    "vrrp_cpu_affinity": ("optwords",),
    "vrrp_rt_priority": ("optwords",),
    "vrrp_rlimit_rttime": ("optwords",),
    "fifo_write_vrrp_states_on_reload": ("flag",),
    "vrrp_netlink_cmd_rcv_bufs": ("int", 0, 2**31 - 1),
    "vrrp_netlink_cmd_rcv_bufs_force": ("bool",),
    "vrrp_netlink_monitor_rcv_bufs": ("int", 0, 2**31 - 1),
    "vrrp_netlink_monitor_rcv_bufs_force": ("bool",),
    "process_monitor_rcv_bufs": ("int", 0, 2**31 - 1),
    "process_monitor_rcv_bufs_force": ("bool",),
    "vrrp_rx_bufs_policy": ("words",),
    "vrrp_rx_bufs_multiplier": ("int", 1, 2**31 - 1),
    "umask": ("words",),
    "log_unknown_vrids": ("flag",),
    "vmac_addr_prefix": ("str",),
    "random_seed": ("int", 0, 2**32 - 1),
    "reload_check_config": ("optwords",),
    "include_check": ("optwords",),
    "reload_time_file": ("str",),
    "reload_repeat": ("flag",),
    "reload_file": ("optwords",),
    "data_use_instance": ("bool",),
    "checker_log_all_failures": ("bool",),
    "no_email_faults": ("flag",),
    "smtp_helo_name": ("str",),
    "smtp_connect_timeout": ("int", 1, 2**31 - 1),
}

# Global keywords for keepalived features fastvrrp does not implement: keyword -> feature named in the note.
GLOBAL_UNSUPPORTED: dict[str, str] = {
    "smtp_server": "SMTP alerts",
    "smtp_alert": "SMTP alerts",
    "smtp_alert_vrrp": "SMTP alerts",
    "smtp_alert_checker": "SMTP alerts",
    "enable_snmp_vrrp": "SNMP",
    "enable_snmp_checker": "SNMP",
    "enable_snmp_rfc": "SNMP",
    "enable_snmp_rfcv2": "SNMP",
    "enable_snmp_rfcv3": "SNMP",
    "enable_snmp_keepalived": "SNMP",
    "enable_traps": "SNMP",
    "snmp_socket": "SNMP",
    "enable_dbus": "DBus",
    "dbus_service_name": "DBus",
    "lvs_id": "LVS/IPVS",
    "lvs_sync_daemon": "LVS/IPVS",
    "lvs_timeouts": "LVS/IPVS",
    "lvs_flush": "LVS/IPVS",
    "lvs_flush_on_stop": "LVS/IPVS",
    "lvs_notify_fifo": "LVS/IPVS",
    "lvs_notify_fifo_script": "LVS/IPVS",
    "lvs_netlink_cmd_rcv_bufs": "LVS/IPVS",
    "lvs_netlink_cmd_rcv_bufs_force": "LVS/IPVS",
    "lvs_netlink_monitor_rcv_bufs": "LVS/IPVS",
    "lvs_netlink_monitor_rcv_bufs_force": "LVS/IPVS",
    "net_namespace_ipvs": "LVS/IPVS",
    "checker_priority": "LVS/IPVS",
    "checker_no_swap": "LVS/IPVS",
    "checker_cpu_affinity": "LVS/IPVS",
    "checker_rt_priority": "LVS/IPVS",
    "checker_rlimit_rttime": "LVS/IPVS",
    "rs_init_notifies": "LVS/IPVS",
    "no_checker_emails": "LVS/IPVS",
    "bfd_priority": "BFD",
    "bfd_no_swap": "BFD",
    "bfd_cpu_affinity": "BFD",
    "bfd_rt_priority": "BFD",
    "bfd_rlimit_rttime": "BFD",
    "vrrp_iptables": "firewall rules (iptables/nftables/ipsets)",
    "vrrp_ipsets": "firewall rules (iptables/nftables/ipsets)",
    "nftables": "firewall rules (iptables/nftables/ipsets)",
    "nftables_priority": "firewall rules (iptables/nftables/ipsets)",
    "nftables_counters": "firewall rules (iptables/nftables/ipsets)",
    "nftables_ifindex": "firewall rules (iptables/nftables/ipsets)",
    "nftables_ipvs": "LVS/IPVS",
    "nftables_ipvs_priority": "LVS/IPVS",
    "nftables_ipvs_start_fwmark": "LVS/IPVS",
}

# Top-level blocks for features fastvrrp does not implement.
TOP_UNSUPPORTED: dict[str, str] = {
    "virtual_server": "LVS virtual servers",
    "virtual_server_group": "LVS virtual servers",
    "bfd_instance": "BFD",
}

# Instance keywords parsed as accepted-but-ignored with a note.
INSTANCE_UNSUPPORTED: dict[str, str] = {
    "track_bfd": "BFD",
    "smtp_alert": "SMTP alerts",
    "use_ipvlan": "ipvlan interfaces",
    "vrf": "VRF",
    "kernel_rx_buf_size": "receive buffer tuning",
    "linkbeat_use_polling": "linkbeat polling",
    "track_src_ip": "track_src_ip",
}
