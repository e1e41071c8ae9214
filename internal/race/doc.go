// Package race runs the rename race that shows why ifbind binds sockets by
// interface index: two dormant links swap names in a loop while workers
// create sockets meant for one of them, half binding the classic way (look
// up the index's name, then SO_BINDTODEVICE to that name), half with ifbind
// (SO_BINDTOIFINDEX), and every socket's binding is read back and checked.
//
// Run builds its links in the calling process's network namespace and
// deletes them before it returns. It is meant to run in a throwaway
// namespace (the ifbind demo re-executes itself into one), and it needs
// CAP_NET_ADMIN there. It exists on Linux only.
//
// The benchmark of "wrong binds per 100,000 sockets" and the ifbind demo
// both drive it:
//
//	res, err := race.Run(ctx, race.Config{Sockets: 100000})
//	fmt.Println(res.ByName.WrongPer100k(), res.ByIndex.WrongPer100k())
package race
