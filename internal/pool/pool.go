// Package pool owns tsim's hybrid executor: one bounded set of slots for
// I/O-bound work (namespace setup, probes, counter reads — mostly waiting
// on the kernel) and a separate limit near the core count for CPU-bound
// work (parsing, PDF drawing). Every stage takes its goroutines from here,
// so nothing spawns unbounded goroutines. It knows nothing of the work.
package pool

import (
	"context"
	"runtime"
	"sync"
)

// Pool bounds concurrent I/O-bound and CPU-bound work separately.
type Pool struct {
	io  chan struct{}
	cpu chan struct{}
}

// Defaults: I/O work waits on the kernel, so more slots than cores pay off;
// CPU work gets one slot per core.
const DefaultIO = 16

// New returns a pool; a limit ≤ 0 takes the default (DefaultIO, NumCPU).
func New(ioLimit, cpuLimit int) *Pool {
	if ioLimit <= 0 {
		ioLimit = DefaultIO
	}
	if cpuLimit <= 0 {
		cpuLimit = runtime.NumCPU()
	}
	return &Pool{io: make(chan struct{}, ioLimit), cpu: make(chan struct{}, cpuLimit)}
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Group runs tasks on the pool and collects the first error; the group's
// context is cancelled on the first failure (like errgroup, but every
// goroutine holds a pool slot while it runs, and waiting tasks never start
// after a failure).
type Group struct {
	p      *Pool
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// Group returns a task group bound to ctx.
func (p *Pool) Group(ctx context.Context) (*Group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Group{p: p, ctx: ctx, cancel: cancel}, ctx
}

func (g *Group) fail(err error) {
	g.once.Do(func() {
		g.err = err
		g.cancel(err)
	})
}

func (g *Group) spawn(sem chan struct{}, fn func(ctx context.Context) error) {
	// Acquire before spawning: the number of live goroutines never exceeds
	// the slots, whatever the number of tasks.
	if err := acquire(g.ctx, sem); err != nil {
		g.fail(err)
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-sem }()
		if err := g.ctx.Err(); err != nil {
			g.fail(err)
			return
		}
		if err := fn(g.ctx); err != nil {
			g.fail(err)
		}
	}()
}

// GoIO starts an I/O-bound task (blocks while all I/O slots are busy).
func (g *Group) GoIO(fn func(ctx context.Context) error) { g.spawn(g.p.io, fn) }

// GoCPU starts a CPU-bound task (blocks while all CPU slots are busy).
func (g *Group) GoCPU(fn func(ctx context.Context) error) { g.spawn(g.p.cpu, fn) }

// Wait waits for every started task and returns the first error.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	return g.err
}
