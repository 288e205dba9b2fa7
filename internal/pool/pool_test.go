package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimitsHold(t *testing.T) {
	for _, c := range []struct{ io, cpu int }{{1, 1}, {3, 2}, {16, 4}} {
		p := New(c.io, c.cpu)
		var liveIO, liveCPU, maxIO, maxCPU atomic.Int32
		track := func(live, max *atomic.Int32) func(context.Context) error {
			return func(context.Context) error {
				n := live.Add(1)
				for {
					m := max.Load()
					if n <= m || max.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				live.Add(-1)
				return nil
			}
		}
		g, _ := p.Group(context.Background())
		for i := 0; i < 50; i++ {
			g.GoIO(track(&liveIO, &maxIO))
			g.GoCPU(track(&liveCPU, &maxCPU))
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		if int(maxIO.Load()) > c.io || int(maxCPU.Load()) > c.cpu {
			t.Errorf("limits %d/%d exceeded: %d/%d", c.io, c.cpu, maxIO.Load(), maxCPU.Load())
		}
		if maxIO.Load() < 1 || maxCPU.Load() < 1 {
			t.Errorf("nothing ran")
		}
	}
}

func TestFirstErrorCancels(t *testing.T) {
	p := New(2, 1)
	boom := errors.New("boom")
	g, ctx := p.Group(context.Background())
	var ran atomic.Int32
	g.GoIO(func(context.Context) error { return boom })
	for i := 0; i < 20; i++ {
		g.GoIO(func(ctx context.Context) error {
			<-ctx.Done()
			ran.Add(1)
			return ctx.Err()
		})
	}
	if err := g.Wait(); !errors.Is(err, boom) {
		t.Fatalf("Wait = %v, want boom", err)
	}
	if ctx.Err() == nil {
		t.Error("group context not cancelled")
	}
}

func TestCancelledContextStopsWaiting(t *testing.T) {
	p := New(1, 1)
	release := make(chan struct{})
	busy, _ := p.Group(context.Background())
	busy.GoIO(func(context.Context) error { <-release; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g, _ := p.Group(ctx)
	g.GoIO(func(context.Context) error { t.Error("ran without a slot"); return nil })
	if err := g.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("a task on a full pool with a cancelled ctx: Wait = %v", err)
	}
	close(release)
	busy.Wait()
}
