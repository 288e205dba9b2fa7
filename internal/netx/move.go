package netx

import (
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// MoveLink moves the link with index (in the socket's namespace) into
// namespace to, puts it on bridge master there (0: none) and sets it up,
// in one RTM_NEWLINK: each link request takes the kernel's rtnl lock.
func (s *Socket) MoveLink(index int, to netns.NsHandle, master int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	msg.Change, msg.Flags = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(to))))
	if master > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	}
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: s.h}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
