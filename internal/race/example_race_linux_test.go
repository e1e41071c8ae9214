package race_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ifbind/ifbind/internal/race"
)

// Run needs a network namespace of its own, with CAP_NET_ADMIN there: the
// ifbind demo re-executes itself into one before it calls Run.
func ExampleRun() {
	res, err := race.Run(context.Background(), race.Config{Sockets: 100000})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range []race.Tally{res.ByName, res.ByIndex} {
		fmt.Printf("%-8s %d sockets, %d on the wrong link (%.1f per 100,000), %d binds failed\n",
			t.Method, t.Sockets, t.Wrong, t.WrongPer100k(), t.Failed)
	}
}
