// Package lifecycle is how a component tells the process that runs it
// (platform/process) what it brings: a readiness check, a job to run
// beside the server, something to release at the end. Each platform
// component declares its parts in one method, so the wiring in a main is
// checked by the compiler: a value that is no component does not compile
// in process.Add, instead of failing at start. The package has no
// dependencies, so any package can implement it without importing the
// process.
package lifecycle

import "context"

// Component is a part of a process.
type Component interface {
	// Lifecycle says what the process does with the component.
	Lifecycle() Parts
}

// Parts are what a component brings; a nil field brings nothing.
type Parts struct {
	// Ready is a readiness check: /readyz fails while it fails.
	Ready func(ctx context.Context) error
	// Degradable: the API goes on without the dependency once started
	// (Kafka, etcd), so Ready must pass once for the instance to be
	// ready, and after that only reports it degraded.
	Degradable bool
	// Run runs beside the server until ctx ends.
	Run func(ctx context.Context) error
	// Close is called at stop, newest component first.
	Close func() error
}
