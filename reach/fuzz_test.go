package reach

import (
	"encoding/binary"
	"testing"
)

// attr encodes one netlink attribute (for seeds).
func attr(t uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], t)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func be(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// ruleMsg builds an NFT_MSG_NEWRULE body with a counter expression.
func ruleMsg(table, chain string, pk, by uint64) []byte {
	counter := cat(attr(nftaExprName, []byte("counter\x00")), attr(nftaExprData, cat(attr(nftaCounterBytes, be(by)), attr(nftaCounterPackets, be(pk)))))
	return cat(attr(nftaRuleTable, []byte(table+"\x00")), attr(nftaRuleChain, []byte(chain+"\x00")),
		attr(nftaRuleExpressions|0x8000, attr(nftaListElem|0x8000, counter)))
}

// addRuleMsg reads one NFT_MSG_NEWRULE answer into its chain, as
// Snapshot does.
func (c Counters) addRuleMsg(attrs []byte) {
	table, chain := ruleChain(attrs)
	c.chain(string(table), string(chain)).addRule(attrs, true)
}

func TestNftMessages(t *testing.T) {
	c := Counters{}
	c.addChainMsg(cat(attr(nftaChainTable, []byte("filter\x00")), attr(nftaChainName, []byte("FORWARD\x00")),
		attr(nftaChainHook, attr(1, []byte{0, 0, 0, 2})), attr(nftaChainCounters, cat(attr(nftaCounterBytes, be(420)), attr(nftaCounterPackets, be(7))))))
	c.addChainMsg(cat(attr(nftaChainTable, []byte("filter\x00")), attr(nftaChainName, []byte("X\x00"))))
	c.addRuleMsg(ruleMsg("filter", "FORWARD", 3, 180))
	c.addRuleMsg(ruleMsg("filter", "FORWARD", 0, 0))
	fw := c["filter"]["FORWARD"]
	if fw.Policy != (Count{7, 420}) || len(fw.Rules) != 2 || fw.Rules[0] != (Count{3, 180}) {
		t.Errorf("FORWARD %+v", fw)
	}
	if x := c["filter"]["X"]; x == nil || x.Policy != (Count{}) {
		t.Errorf("user chain %+v", x)
	}
}

// FuzzNftMessages: whatever bytes the kernel (or a bug) hands over, the
// attribute walk never panics or loops.
func FuzzNftMessages(f *testing.F) {
	f.Add(ruleMsg("filter", "FORWARD", 1, 60))
	f.Add(cat(attr(nftaChainTable, []byte("nat\x00")), attr(nftaChainHook, nil)))
	f.Add([]byte{4, 0})
	f.Add([]byte{0, 0, 1, 0, 9, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Counters{}
		c.addChainMsg(b)
		c.addRuleMsg(b)
	})
}

// FuzzParseSave: iptables-save -c text never panics the parser.
func FuzzParseSave(f *testing.F) {
	f.Add("*filter\n:INPUT ACCEPT [3:180]\n:X - [0:0]\n[1:60] -A INPUT -j X\nCOMMIT\n")
	f.Add("*nat\n[1:2] -A\n")
	f.Add(":\n[:]\n[")
	f.Fuzz(func(t *testing.T, s string) {
		parseSave([]byte(s))
	})
}

// FuzzParseSnmp: /proc/net/snmp text never panics the parser.
func FuzzParseSnmp(f *testing.F) {
	f.Add("Ip: Forwarding InReceives ForwDatagrams InDelivers\nIp: 1 2 3 4\n")
	f.Add("Ip: a\nIp: 1 2 3\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseSnmp(s)
	})
}
