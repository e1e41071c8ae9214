//go:build !linux

package ifbind

// errNetnsUnsupported is the cause of every socket meant for another
// network namespace outside Linux.
var errNetnsUnsupported error = unsupportedError("making a socket in another network namespace")

func runIn[C any](e *nsEntry, do func() (C, error)) (C, error) {
	if e == nil {
		return do()
	}
	var zero C
	return zero, &netnsError{netns: e.ref.spec, err: errNetnsUnsupported}
}

func (e *nsEntry) leave() error {
	return &netnsError{netns: e.ref.spec, err: errNetnsUnsupported}
}

func netnsDialError(_ *nsRef, err error, _ int) error { return err }
