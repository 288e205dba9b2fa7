package reach

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

// A bridge floods a frame whose destination MAC it has not learnt to every
// port; each router on the segment counts it in its IP InReceives and then
// drops it as not its own (PACKET_OTHERHOST), before any netfilter hook.
// Those frames are not the probe arriving: the kernel counts them per
// interface (rx_otherhost_dropped, Linux 5.19+), so a router's packets
// received for itself are InReceives minus the sum of those counters.

// rtnlStats64 offsets: rx_otherhost_dropped is field 25 of struct
// rtnl_link_stats64 (linux/if_link.h).
const (
	iflaStats64          = 23
	otherhostOffset      = 24 * 8
	sizeofIfInfomsg      = 16
	otherhostUnavailable = ^uint64(0)
)

// otherhostReader dumps the links of one namespace over a route netlink
// socket opened inside it.
type otherhostReader struct {
	fd  int
	seq uint32
	buf []byte
}

func newOtherhostReader(ns nsRef) (*otherhostReader, error) {
	fd, err := netlinkSocket(ns.h, unix.NETLINK_ROUTE, "route")
	if err != nil {
		return nil, err
	}
	return &otherhostReader{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (r *otherhostReader) Close() {
	if r != nil && r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// read returns the sum of rx_otherhost_dropped over the namespace's links
// (otherhostUnavailable when the kernel does not report it).
func (r *otherhostReader) read() (uint64, error) {
	if r == nil || r.fd < 0 {
		return otherhostUnavailable, nil
	}
	sum, have := uint64(0), false
	err := r.dump(unix.RTM_GETLINK, make([]byte, sizeofIfInfomsg), func(body []byte) {
		if len(body) < sizeofIfInfomsg {
			return
		}
		for t, v := range nlAttrs(body[sizeofIfInfomsg:]) {
			if t == iflaStats64 && len(v) >= otherhostOffset+8 {
				sum += binary.NativeEndian.Uint64(v[otherhostOffset:])
				have = true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if !have {
		return otherhostUnavailable, nil
	}
	return sum, nil
}

// request sends one netlink request (not a dump) and returns the body of
// its answer, or the kernel's error as a syscall.Errno.
func (r *otherhostReader) request(typ uint16, payload []byte) ([]byte, error) {
	r.seq++
	var ans []byte
	err := nlExchange(r.fd, r.buf, typ, unix.NLM_F_REQUEST, r.seq, append(make([]byte, unix.SizeofNlMsghdr), payload...),
		func(_ uint16, body []byte) (bool, error) {
			ans = append([]byte(nil), body...)
			return true, nil
		})
	if err == nil && ans == nil {
		err = errors.New("netlink: empty answer")
	}
	return ans, err
}
