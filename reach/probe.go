package reach

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/tsim-dev/tsim/internal/netx"
)

// nsRef is a namespace a socket is opened in.
type nsRef struct {
	name string // for messages and listener keys
	h    netns.NsHandle
}

// inNS runs f on a thread inside ns: sockets created by f belong to ns for
// their whole life, whatever thread uses them later.
func inNS(ns nsRef, f func() error) error { return netx.Do(ns.h, f) }

// lkey identifies one echo listener.
type lkey struct {
	ns    string
	proto string
	addr  netip.AddrPort
}

// echoServers are the TCP and UDP echo listeners of one Run. A TCP
// connection reports its token when the client has reset it, so the probe
// knows every packet of it has crossed the routers.
type echoServers struct {
	mu    sync.Mutex
	ls    map[lkey]io.Closer
	errs  map[lkey]error
	done  map[string]chan struct{} // token -> closed when the server saw the end
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newEchoServers() *echoServers {
	return &echoServers{ls: map[lkey]io.Closer{}, errs: map[lkey]error{}, done: map[string]chan struct{}{}, conns: map[net.Conn]bool{}}
}

// ensure opens the listener for k in ns once; the error is remembered (a
// listener that cannot bind makes its probes UNKNOWN, it is not retried).
func (s *echoServers) ensure(ns nsRef, k lkey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ls[k]; ok {
		return nil
	}
	if err, ok := s.errs[k]; ok {
		return err
	}
	var c io.Closer
	err := inNS(ns, func() error {
		switch k.proto {
		case "tcp":
			l, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(k.addr))
			if err != nil {
				return err
			}
			c = l
			s.wg.Add(1)
			go s.serveTCP(l)
		case "udp":
			pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(k.addr))
			if err != nil {
				return err
			}
			c = pc
			s.wg.Add(1)
			go s.serveUDP(pc)
		default:
			return fmt.Errorf("no listener for %s", k.proto)
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("cannot listen on %s/%s in %s: %w", k.addr, k.proto, ns.name, err)
		s.errs[k] = err
		return err
	}
	s.ls[k] = c
	return nil
}

// expect registers a token before its probe starts.
func (s *echoServers) expect(token string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.done[token] = ch
	return ch
}

func (s *echoServers) forget(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.done, token)
}

func (s *echoServers) finished(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.done[token]; ok {
		close(ch)
		delete(s.done, token)
	}
}

func (s *echoServers) serveTCP(l *net.TCPListener) {
	defer s.wg.Done()
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReaderSize(c, 256).ReadString('\n')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(line)); err != nil {
				return
			}
			// Wait for the client's reset (or FIN): after it nothing more
			// of this connection crosses the routers.
			var b [64]byte
			for {
				if _, err := c.Read(b[:]); err != nil {
					break
				}
			}
			s.finished(line[:len(line)-1])
		}()
	}
}

func (s *echoServers) serveUDP(pc *net.UDPConn) {
	defer s.wg.Done()
	b := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(b)
		if err != nil {
			return
		}
		pc.WriteToUDPAddrPort(b[:n], from)
	}
}

// Close stops every listener and connection and waits for their
// goroutines.
func (s *echoServers) Close() {
	s.mu.Lock()
	for _, l := range s.ls {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// probeSpec is one probe: from src (bound in ns) to dst.
type probeSpec struct {
	ns    nsRef
	proto string
	src   netip.Addr
	sport uint16 // 0: ephemeral
	dst   netip.AddrPort
	token string
}

// probeOutcome is what the probing socket saw.
type probeOutcome struct {
	ok    bool  // the echo came back
	err   error // connect/read error (refused, unreachable, timeout)
	setup error // the socket could not be opened: the verdict is UNKNOWN
}

// unreachable reports an ICMP unreachable answer (no route at a router).
func (o probeOutcome) unreachable() bool {
	return errors.Is(o.err, syscall.EHOSTUNREACH) || errors.Is(o.err, syscall.ENETUNREACH)
}

// runProbe sends one probe and returns when the echo came back, an error
// ended it, or ctx was cancelled (the caller cancels as soon as the
// counters show a drop). It never waits longer than ctx allows.
func runProbe(ctx context.Context, p probeSpec) probeOutcome {
	switch p.proto {
	case "tcp":
		return probeTCP(ctx, p)
	case "udp":
		return probeUDP(ctx, p)
	default:
		return probeICMP(ctx, p)
	}
}

func probeTCP(ctx context.Context, p probeSpec) probeOutcome {
	var c *net.TCPConn
	var derr error
	setup := inNS(p.ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: p.src.AsSlice(), Port: int(p.sport)}}
		// Dialling here (the thread is in ns) creates the socket in ns.
		conn, err := d.DialContext(ctx, "tcp4", p.dst.String())
		if err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) && oe.Op == "dial" && isSetupErr(err) {
				return err
			}
			derr = err
			return nil
		}
		c = conn.(*net.TCPConn)
		return nil
	})
	if setup != nil {
		return probeOutcome{setup: setup}
	}
	if derr != nil {
		return probeOutcome{err: derr}
	}
	// Close with a reset: one packet, sent now, instead of a FIN exchange
	// that would trail into the next probe's counters.
	defer func() { c.SetLinger(0); c.Close() }()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write([]byte(p.token + "\n")); err != nil {
		return probeOutcome{err: err}
	}
	want := p.token + "\n"
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil {
		return probeOutcome{err: err}
	}
	if string(buf) != want {
		return probeOutcome{err: fmt.Errorf("echo mismatch: got %q", buf)}
	}
	return probeOutcome{ok: true}
}

// isSetupErr tells a local failure (address not here, port in use) from a
// network answer.
func isSetupErr(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE)
}

// openIn opens a socket inside ns (it belongs to ns for good) and makes
// the end of ctx unblock it; done closes it.
func openIn[C interface {
	SetDeadline(time.Time) error
	Close() error
}](ctx context.Context, ns nsRef, open func() (C, error)) (c C, done func(), err error) {
	err = inNS(ns, func() error {
		var err error
		c, err = open()
		return err
	})
	if err != nil {
		return c, nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	return c, func() { stop(); c.Close() }, nil
}

func probeUDP(ctx context.Context, p probeSpec) probeOutcome {
	c, done, err := openIn(ctx, p.ns, func() (*net.UDPConn, error) {
		return net.DialUDP("udp4", &net.UDPAddr{IP: p.src.AsSlice(), Port: int(p.sport)}, net.UDPAddrFromAddrPort(p.dst))
	})
	if err != nil {
		return probeOutcome{setup: err}
	}
	defer done()
	if _, err := c.Write([]byte(p.token)); err != nil {
		return probeOutcome{err: err}
	}
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return probeOutcome{err: err}
		}
		if string(buf[:n]) == p.token {
			return probeOutcome{ok: true}
		}
	}
}

// probeICMP sends one echo request from a raw socket bound to src and
// waits for the matching reply (or an ICMP error quoting it).
func probeICMP(ctx context.Context, p probeSpec) probeOutcome {
	c, done, err := openIn(ctx, p.ns, func() (*net.IPConn, error) {
		return net.ListenIP("ip4:icmp", &net.IPAddr{IP: p.src.AsSlice()})
	})
	if err != nil {
		return probeOutcome{setup: err}
	}
	defer done()
	id := uint16(rand.Uint32())
	const seq = 1
	payload := []byte(p.token)
	msg := make([]byte, 8+len(payload))
	msg[0] = 8 // echo request
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[8:], payload)
	binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	if _, err := c.WriteToIP(msg, &net.IPAddr{IP: p.dst.Addr().AsSlice()}); err != nil {
		return probeOutcome{err: err}
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFromIP(buf)
		if err != nil {
			return probeOutcome{err: err}
		}
		b := buf[:n]
		if len(b) < 8 {
			continue
		}
		switch b[0] {
		case 0:
			if binary.BigEndian.Uint16(b[4:]) == id && binary.BigEndian.Uint16(b[6:]) == seq {
				return probeOutcome{ok: true}
			}
		case 3, 11:
			// The error quotes our IP header (20+ bytes) and echo header.
			q := b[8:]
			if len(q) >= 20 {
				hl := int(q[0]&0x0f) * 4
				if len(q) >= hl+8 && q[hl] == 8 && binary.BigEndian.Uint16(q[hl+4:]) == id {
					if b[0] == 11 {
						return probeOutcome{err: errors.New("ICMP time exceeded")}
					}
					switch b[1] {
					case 0, 6, 11:
						return probeOutcome{err: syscall.ENETUNREACH}
					case 2, 3:
						return probeOutcome{err: syscall.ECONNREFUSED}
					}
					// Host unreachable, administratively prohibited …: what
					// a TCP socket reports as EHOSTUNREACH too.
					return probeOutcome{err: fmt.Errorf("ICMP destination unreachable (code %d): %w", b[1], syscall.EHOSTUNREACH)}
				}
			}
		}
	}
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
