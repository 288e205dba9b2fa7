package netx

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Veth describes a veth pair made in one RTM_NEWLINK request: this end in
// the namespace of the socket, the peer in PeerNS. Everything the kernel
// lets a create request carry is set at once (master, MTU, MAC, this end's
// admin state, interface indexes), so a lab needs few follow-up requests
// per interface; that matters because each one takes the kernel's rtnl
// lock. The peer cannot be brought up by the same request (the kernel
// opens it before the pair is joined and answers ENOTCONN).
type Veth struct {
	Name   string
	Index  int // requested ifindex (0: the kernel picks; then PeerIndex is ignored)
	MTU    int
	Master int // bridge ifindex, 0: none
	Up     bool

	PeerName  string
	PeerNS    netns.NsHandle
	PeerIndex int // requested ifindex of the peer (needs Index)
	PeerMTU   int
	PeerMAC   net.HardwareAddr
}

// Socket is a NETLINK_ROUTE socket opened inside a namespace.
type Socket struct{ h *nl.SocketHandle }

// OpenSocket opens a route socket inside ns.
//
// The namespace to return to is taken by GetNetlinkSocketAt itself, after it
// has locked the thread (curNs None). Taking it here, on an unlocked
// goroutine, races: netns.Get reads /proc/PID/task/TID/ns/net of the thread
// the goroutine ran on a moment ago, which by then may be another
// goroutine's thread inside a lab namespace; the socket's thread then
// "returned" into that lab and served other goroutines from there
// (serve's soak saw loopback connections refused and a pool thread left in
// a lab namespace).
func OpenSocket(ns netns.NsHandle) (*Socket, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	return &Socket{&nl.SocketHandle{Socket: s}}, nil
}

// Close closes the socket.
func (s *Socket) Close() {
	if s != nil && s.h != nil {
		s.h.Socket.Close()
	}
}

// AddVeth creates the pair. When the requested indexes are taken (EBUSY,
// EEXIST on an index) it retries letting the kernel choose them and
// reports that by zeroing v.Index and v.PeerIndex.
func (s *Socket) AddVeth(v *Veth) error {
	err := s.addVeth(v)
	if (errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST)) && v.Index != 0 {
		v.Index, v.PeerIndex = 0, 0
		err = s.addVeth(v)
	}
	if err != nil {
		return fmt.Errorf("create veth %s/%s: %w", v.Name, v.PeerName, err)
	}
	return nil
}

func (s *Socket) addVeth(v *Veth) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(v.Index)
	if v.Up {
		msg.Change, msg.Flags = unix.IFF_UP, unix.IFF_UP
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.Name)))
	if v.MTU > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.MTU))))
	}
	if v.Master > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(v.Master))))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peer := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	pm := nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	if v.Index != 0 {
		pm.Index = int32(v.PeerIndex)
	}
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.PeerName))
	if v.PeerMTU > 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.PeerMTU)))
	}
	if v.PeerMAC != nil {
		peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(v.PeerMAC))
	}
	if v.PeerNS.IsOpen() {
		peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(v.PeerNS)))
	}
	req.AddData(info)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: s.h}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
