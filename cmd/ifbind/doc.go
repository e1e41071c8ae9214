// Command ifbind is the ifbind library at work from a shell: a curl and a
// netcat whose sockets are bound to one network interface by index, a
// listing of the links, and a demo of the race that binding by name loses.
//
// Usage:
//
//	ifbind links [--json]
//	ifbind get -i IFACE [flags] URL
//	ifbind dial -i IFACE tcp|udp HOST:PORT
//	ifbind listen -i IFACE tcp|udp [ADDR:]PORT
//	ifbind demo [-duration D] [-workers N] [-sockets N] [-json]
//	ifbind version
//
// IFACE is an interface name, an alternative name, an index or a MAC
// address. Run "ifbind -h" for examples and exit codes, and
// "ifbind COMMAND -h" for a command's flags and limits.
package main
