// Package sandbox runs the current program again inside network namespaces
// of its own, for the ifbind demo and for the test binaries: a new network
// namespace when root, or new user and network namespaces otherwise (as
// `unshare -rn` does), where the kernel allows unprivileged user
// namespaces. It is Linux only.
package sandbox
