package trace

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// The kernel's IPv4 multipath selection (net/ipv4/route.c
// fib_multipath_hash, net/ipv4/fib_semantics.c fib_select_multipath and
// fib_rebalance, net/core/flow_dissector.c __flow_hash_from_keys), for
// the packets tsim simulates (no encapsulation, no ICMP errors):
//
//   - The hash input is a struct flow_keys, zeroed, holding only the
//     fields the policy selects (fib_multipath_hash_policy 0 and 2:
//     source and destination address; 1: also protocol and ports; 3:
//     the fields of fib_multipath_hash_fields).
//   - __flow_hash_consistentify orders the addresses and the ports so
//     that both directions hash alike, then SipHash-2-4 runs over the
//     struct from its basic key up to the end of the IPv4 addresses
//     (48 bytes), keyed with the seed twice in each 64-bit half
//     (fib_multipath_hash_construct_key); 0 becomes 1.
//   - The hash shifted right by one is compared with each nexthop's upper
//     bound, round(weight so far << 31 / total weight) - 1.
//
// A seed of 0 means "random at boot": the branch cannot be predicted.
// Policy 1 on a forwarded packet uses the L4 hash the packet may already
// carry (skb->l4_hash, e.g. the sender's socket hash), which is not
// predictable either. hosts/agree_test.go checks this against the kernel.

// Multipath hash sysctls and their kernel defaults.
const (
	sysHashPolicy = "net.ipv4.fib_multipath_hash_policy"
	sysHashFields = "net.ipv4.fib_multipath_hash_fields"
	sysHashSeed   = "net.ipv4.fib_multipath_hash_seed"
)

// Hash field bits (FIB_MULTIPATH_HASH_FIELD_*).
const (
	hashSrcIP   = 1 << 0
	hashDstIP   = 1 << 1
	hashIPProto = 1 << 2
	hashSrcPort = 1 << 4
	hashDstPort = 1 << 5
	// hashOuterMask: the outer-header fields (the inner ones are for
	// encapsulated packets, which tsim does not simulate).
	hashOuterMask = 0x3f
)

// hashNexthop returns the 0-based nexthop of multipath route rt the
// kernel picks for k, or -1 when it cannot be computed. The seed is the
// facts' fib_multipath_hash_seed, else the engine's (SetHashSeed).
func (r *rtr) hashNexthop(rt *facts.Route, k flowKey) int {
	sd := uint32(r.sysctlInt(sysHashSeed, 0))
	if sd == 0 {
		sd = r.seed
	}
	if sd == 0 {
		return -1
	}
	policy := r.sysctlInt(sysHashPolicy, 0)
	var fields int
	switch policy {
	case 0, 2:
		fields = hashSrcIP | hashDstIP
	case 1:
		if k.proto == 6 || k.proto == 17 {
			// A forwarded packet may carry the sender's L4 hash; a
			// connecting socket without a port hashes a random one.
			return -1
		}
		fields = hashSrcIP | hashDstIP | hashIPProto | hashSrcPort | hashDstPort
	case 3:
		fields = r.sysctlInt(sysHashFields, 0x7)
		if k.local && fields&hashSrcPort != 0 && (k.proto == 6 || k.proto == 17) {
			// A connecting socket without a port hashes a random one
			// (FLOWI_FLAG_ANY_SPORT).
			return -1
		}
	default:
		return -1
	}
	// A forwarded packet is hashed from its skb; a router's own packet
	// from the flow (no skb yet).
	h := multipathHash(sd, policy, fields, k, !k.local) >> 1
	var saddr [4]byte
	if k.local {
		saddr = k.src.As4()
	}
	return selectNexthop(r, rt, h, saddr, k.local)
}

// multipathHash is fib_multipath_hash before the final shift: the keyed
// flow hash of the fields selected; policy 3 on a packet (skb) mixes it
// with the (absent) inner hash by jhash_2words
// (fib_multipath_custom_hash_skb).
func multipathHash(seed uint32, policy, fields int, k flowKey, skb bool) uint32 {
	if policy == 3 {
		var h uint32
		if fields&hashOuterMask != 0 {
			h = flowHash(seed, fields, k)
		}
		if skb {
			h = jhash2Words(h, 0, 0)
		}
		return h
	}
	return flowHash(seed, fields, k)
}

// jhash2Words is the kernel's jhash_2words (include/linux/jhash.h).
func jhash2Words(a, b, initval uint32) uint32 {
	iv := initval + 0xdeadbeef + 2<<2
	a += iv
	b += iv
	c := iv
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// flowHash is fib_multipath_hash_from_keys for the fields selected.
func flowHash(seed uint32, fields int, k flowKey) uint32 {
	var src, dst [4]byte
	var sport, dport [2]byte
	var proto byte
	if fields&hashSrcIP != 0 {
		src = k.src.As4()
	}
	if fields&hashDstIP != 0 {
		dst = k.dst.As4()
	}
	if fields&hashIPProto != 0 {
		proto = byte(k.proto)
	}
	if k.proto == 6 || k.proto == 17 {
		if fields&hashSrcPort != 0 {
			binary.BigEndian.PutUint16(sport[:], k.sport)
		}
		if fields&hashDstPort != 0 {
			binary.BigEndian.PutUint16(dport[:], k.dport)
		}
	}
	// __flow_hash_consistentify compares the raw (network order) values
	// as host-order integers; this is x86 and arm64: little endian.
	if binary.LittleEndian.Uint32(dst[:]) < binary.LittleEndian.Uint32(src[:]) {
		src, dst = dst, src
	}
	if binary.LittleEndian.Uint16(dport[:]) < binary.LittleEndian.Uint16(sport[:]) {
		sport, dport = dport, sport
	}
	// struct flow_keys from basic: basic{n_proto u16, ip_proto u8, pad}
	// 0..4, tags 4..8, vlan 8..16, cvlan 16..24, keyid 24..28, ports
	// 28..32, icmp 32..36, addrs.v4 36..44, then 4 bytes of the wider
	// address union: 48 bytes.
	var b [48]byte
	b[2] = proto
	copy(b[28:30], sport[:])
	copy(b[30:32], dport[:])
	copy(b[36:40], src[:])
	copy(b[40:44], dst[:])
	key := uint64(seed)<<32 | uint64(seed)
	h := uint32(siphash24(key, key, b[:]))
	if h == 0 {
		h = 1
	}
	return h
}

// selectNexthop is fib_select_multipath: the first live nexthop whose
// upper bound is at least h (with a source address, one whose preferred
// source is saddr; failing that the first candidate).
func selectNexthop(r *rtr, rt *facts.Route, h uint32, saddr [4]byte, local bool) int {
	total := 0
	for _, n := range rt.Nexthops {
		if !deadNexthop(n) {
			total += weightOf(n)
		}
	}
	if total == 0 {
		return -1
	}
	w, first := 0, -1
	found := false
	for i, n := range rt.Nexthops {
		if deadNexthop(n) {
			continue
		}
		w += weightOf(n)
		upper := int64((uint64(w)<<31+uint64(total)/2)/uint64(total)) - 1
		match := true
		if local && saddr != [4]byte{} {
			dev := n.Dev
			if dev == "" {
				_, dev = r.hopOf(&facts.Route{Gateway: n.Gateway})
			}
			match = r.addrOn(dev, n.Gateway).As4() == saddr
		}
		if !found {
			first = i
			found = match
		}
		if int64(h) > upper {
			continue
		}
		if match {
			return i
		}
		if found {
			return first
		}
	}
	return first
}

func weightOf(n *facts.Nexthop) int {
	if n.Weight <= 0 {
		return 1
	}
	return n.Weight
}

// deadNexthop: the kernel gives dead and (with
// ignore_routes_with_linkdown) linkdown nexthops no share of the hash.
func deadNexthop(n *facts.Nexthop) bool {
	for _, f := range n.Flags {
		if f == "dead" {
			return true
		}
	}
	return false
}

// siphash24 is SipHash-2-4 with key (k0, k1) as the kernel's siphash()
// computes it, 64-bit result.
func siphash24(k0, k1 uint64, p []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(p)
	for len(p) >= 8 {
		m := binary.LittleEndian.Uint64(p)
		v3 ^= m
		round()
		round()
		v0 ^= m
		p = p[8:]
	}
	var last [8]byte
	copy(last[:], p)
	last[7] = byte(n)
	m := binary.LittleEndian.Uint64(last[:])
	v3 ^= m
	round()
	round()
	v0 ^= m
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

// hashNotes says, for the routers with ECMP points, why the kernel's
// branch is not named (no seed in the facts, a random seed, a policy the
// model cannot predict) and which hash settings were kernel defaults.
func (w *walker) hashNotes(t *doc.Trace) {
	seen := map[string]bool{}
	for _, b := range t.Branches {
		for _, c := range b.Choices {
			f := strings.Fields(c)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimSuffix(f[1], ":")
			if seen[name] {
				continue
			}
			seen[name] = true
			r := w.e.byName[name]
			if r == nil {
				continue
			}
			var missing []string
			for _, k := range []string{sysHashPolicy, sysHashFields, sysHashSeed} {
				if _, ok := r.f.Sysctls[k]; !ok {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				t.Notes = append(t.Notes, fmt.Sprintf("%s: the facts lack %s; kernel defaults assumed (policy 0, fields 0x7, seed 0 = random)",
					name, strings.Join(missing, ", ")))
			}
			switch p := r.sysctlInt(sysHashPolicy, 0); {
			case r.sysctlInt(sysHashSeed, 0) == 0 && r.seed == 0:
				t.Notes = append(t.Notes, name+": fib_multipath_hash_seed is 0 (random at boot): the kernel's branch cannot be predicted (give the seed with --hash-seed)")
			case r.sysctlInt(sysHashSeed, 0) == 0:
				t.Notes = append(t.Notes, fmt.Sprintf("%s: multipath hash seed %d (--hash-seed; the facts do not pin one)", name, r.seed))
			case p == 1:
				t.Notes = append(t.Notes, name+": fib_multipath_hash_policy 1 hashes a forwarded tcp/udp packet with the L4 hash it may carry: the kernel's branch cannot be predicted for it")
			case p > 3:
				t.Notes = append(t.Notes, fmt.Sprintf("%s: fib_multipath_hash_policy %d is not modelled", name, p))
			}
		}
	}
}

// SetHashSeed gives the fib_multipath_hash_seed of the routers whose facts
// do not pin one (absent or 0, which the kernel replaces by a random
// seed): a lab that pins its seeds lets trace name the ECMP branch the
// kernel takes. Call it before tracing; 0 forgets it.
func (e *Engine) SetHashSeed(seed uint32) {
	for _, r := range e.routers {
		r.seed = seed
	}
}
