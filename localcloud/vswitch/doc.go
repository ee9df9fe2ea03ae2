// Package vswitch is the local cloud's guest network: a user-space
// Ethernet switch whose ports are UDP sockets, so guest networking needs
// no state in the host's kernel at all: no bridge, no tap device, no
// ip(6)tables or nftables rule, no br_netfilter, no sysctl. The project's
// network-safety rule (never change the host's firewall or forwarding) is
// kept by construction.
//
// # Ports
//
// Each guest NIC is QEMU's socket netdev in UDP mode (libvirt's
// <interface type='udp'>): the NIC sends every Ethernet frame as one UDP
// datagram to its switch port's address (Port.Switch) and receives frames
// on its own (Port.NIC). The switch listens on Config.Addr, 127.0.0.1 by
// default; a switch serving hypervisors on other machines listens on an
// address they reach. A port accepts datagrams from its NIC's address
// only. Ports live as long as their domains are defined; the driver
// reopens them, at the same addresses, from the domains' metadata when
// the broker starts (a restart loses the frames in flight only).
//
// # Forwarding
//
// A frame goes to the port of the same network whose MAC is its
// destination; broadcast and multicast frames go to every other port of
// the network. Every port's MAC is known, so there is no learning and a
// unicast frame to an unknown MAC is dropped, never flooded. Nothing
// crosses networks, and nothing reaches the host or beyond: the switch
// has no uplink.
//
// # Anti-spoofing
//
// A port sends only with its own MAC as source, IPv4 only from its fixed
// IPs, IPv6 from its fixed IPs or its MAC's link-local address (the
// unspecified address in neighbour discovery, for duplicate address
// detection), ARP only with its own MAC and IP as sender (0.0.0.0 in a
// probe). Other Ethernet types (VLAN tags, LLDP...) are dropped. The
// networks run no DHCP: addresses come from the config drive.
//
// # Security groups
//
// A port in security groups has a filter, compiled by the cloud
// (localcloud.PortFilter: accept rules, remote groups already expanded to
// their members' addresses). Filtering is stateful, as Neutron's: each
// filtered port is a connection-tracking zone; a packet to or from it
// passes when it belongs to a tracked connection or when a rule of its
// direction accepts it, which starts a connection (TCP and UDP by their
// 5-tuple, ICMP echo by its ID, other IP protocols by addresses and
// protocol). Everything else to or from the port is dropped (ingress is
// denied unless a rule admits it; egress per the rules). ARP and IPv6
// neighbour discovery always pass. ICMP errors are not related to the
// connections they are about: they pass only by a rule.
//
// A filter is swapped whole and atomically (SetFilter): the next frame is
// judged by the new rules. A connection the new filter would not accept
// is cut at its next packet, as Neutron does on rule removal (it deletes
// the conntrack entries of the removed rule): each connection remembers
// the filter that admitted it and is checked again, once, under a new
// one. A port known to be filtered whose filter has not arrived yet
// (Port.Filtered, a switch rebuilt at start-up) drops all IP traffic
// until it does: it fails closed.
//
// The connection table is bounded (Config.MaxConnections, default 65536
// for the switch): expired connections are swept every 10 s and when the
// table is full; a table still full drops new connections, as Linux's
// conntrack does, while established ones go on. Timeouts after the last
// packet: TCP 1 h (30 s after a FIN or RST), UDP 3 min, ICMP echo 30 s,
// other protocols 10 min.
//
// # Routers
//
// A router (SetRouter, a localcloud.RouterPlan) is ports of the switch
// with no NIC behind them, one per interface and one on its gateway's
// external network, which has no uplink either. The switch answers ARP
// for the router's addresses (and, on the gateway, for its floating IPs)
// and routes the IPv4 packets sent to its MACs itself (router.go): the
// longest matching connected subnet, else a static route, else the
// default route by the gateway; the next hop's MAC comes from the
// switch's own tables, so routers send no ARP. The TTL drops by one and
// the checksums are updated incrementally. A floating IP is 1:1 NAT: the
// destination rewritten on the way in, the source on the way out by the
// gateway. With SNAT, what else leaves by the gateway leaves from the
// gateway's address and a port (an echo ID) the router picks, and only
// answers to that come back (nat.go: a bounded table with conntrack's
// timeouts). A router answers pings of its address on the sender's
// network. Security groups see routed packets as they reach the
// destination port (after the router's rewrites). Not done: IPv6
// routing, ICMP errors (TTL exceeded, unreachable), fragments under SNAT.
//
// # Performance
//
// Each port has one goroutine reading its socket with recvmmsg, up to
// Config.Batch (32) datagrams per system call into buffers reused for the
// port's life; a frame costs one sendmsg to its receiver (a flooded frame
// one per receiver). The forwarding table is an immutable snapshot read
// without a lock; the connection table takes one mutex per filtered
// packet. BenchmarkSwitch (make bench) measures it between two NIC
// sockets on 127.0.0.1; the figures and what they mean for a production
// host are in the README's local cloud section. A TCG guest's own
// virtio-net emulation is far slower than the switch, so the tests'
// guests never wait on it; KVM guests pushing line rate would.
package vswitch
