package facts

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// countRawByHand counts a raw facts file the simplest way possible, line by
// line, so Counts can be checked against something that shares no code.
func countRawByHand(t *testing.T, text string) RouterCounts {
	var c RouterCounts
	section := ""
	prio := regexp.MustCompile(`^\d+:\s`)
	ifHeader := regexp.MustCompile(`^\d+: \S+: <`)
	subnets := map[string]bool{}
	inBody := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "=== TSIM_SECTION_START:"):
			section = strings.TrimSuffix(strings.TrimPrefix(l, "=== TSIM_SECTION_START:"), " ===")
			inBody = false
			if strings.HasPrefix(section, "routing_table") {
				c.Tables++
			}
			continue
		case strings.HasPrefix(l, "=== TSIM_SECTION_END:"):
			section = ""
			continue
		case l == "---":
			inBody = true
			continue
		case strings.HasPrefix(l, "EXIT_CODE:"):
			inBody = false
			continue
		}
		if !inBody {
			continue
		}
		switch {
		case section == "iptables_save" && strings.HasPrefix(l, "-A "):
			c.IptablesRules++
		case section == "ipset_save" && strings.HasPrefix(l, "add "):
			c.IpsetMembers++
		case section == "ipset_save" && strings.HasPrefix(l, "create "):
			c.Ipsets++
		case section == "policy_rules" && prio.MatchString(l):
			c.Rules++
		case strings.HasPrefix(section, "routing_table") && strings.TrimSpace(l) != "":
			c.Routes++
		case section == "interfaces" && ifHeader.MatchString(l):
			c.Interfaces++
		case section == "interfaces" && (strings.HasPrefix(strings.TrimSpace(l), "inet ") || strings.HasPrefix(strings.TrimSpace(l), "inet6 ")):
			a := strings.Fields(l)[1]
			if strings.HasPrefix(a, "127.") || a == "::1/128" {
				continue
			}
			c.Addresses++
			if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is4() {
				subnets[p.Masked().String()] = true
			}
		}
	}
	c.Subnets = sortedSubnets(subnets)
	return c
}

func sortedSubnets(m map[string]bool) []string {
	out := []string{}
	for s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		return netip.MustParsePrefix(out[i]).Addr().Less(netip.MustParsePrefix(out[j]).Addr())
	})
	return out
}

func TestCountsRawCorpus(t *testing.T) {
	dir := corpus(t, "raw_facts")
	files, _ := filepath.Glob(filepath.Join(dir, "*_facts.txt"))
	if len(files) != 10 {
		t.Fatalf("corpus has %d raw files, want 10", len(files))
	}
	f, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), "_facts.txt")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := countRawByHand(t, string(b))
			want.Name = name
			r := f.Router(name)
			if r == nil {
				t.Fatalf("router %s not loaded", name)
			}
			got := Counts(r)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Counts = %+v\nby hand  %+v", got, want)
			}
			total += got.IptablesRules
		})
	}
	// The corpus README promises ~1,600 iptables rules: make sure the
	// hand count did not silently count nothing.
	if total < 1000 {
		t.Errorf("only %d iptables rules in the corpus", total)
	}
}

func TestCountsLegacyJSONCorpus(t *testing.T) {
	dir := corpus(t, "tsim_facts")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 10 {
		t.Fatalf("corpus has %d JSON files, want 10", len(files))
	}
	f, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Routing struct {
					Tables []map[string]any `json:"tables"`
					Rules  []map[string]any `json:"rules"`
				} `json:"routing"`
				Network struct {
					Interfaces []map[string]any `json:"interfaces"`
				} `json:"network"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			want := RouterCounts{Name: name, Rules: len(doc.Routing.Rules), Routes: len(doc.Routing.Tables)}
			tables := map[string]bool{}
			for _, rt := range doc.Routing.Tables {
				tn, _ := rt["table"].(string)
				if tn == "" {
					tn = "main"
				}
				tables[tn] = true
			}
			want.Tables = len(tables)
			devs := map[string]bool{}
			subnets := map[string]bool{}
			for _, i := range doc.Network.Interfaces {
				dev, _ := i["dev"].(string)
				src, _ := i["prefsrc"].(string)
				dst, _ := i["dst"].(string)
				if dev == "" || src == "" || strings.HasPrefix(src, "127.") {
					continue
				}
				devs[dev] = true
				want.Addresses++
				subnets[netip.MustParsePrefix(dst).Masked().String()] = true
			}
			want.Interfaces = len(devs)
			want.Subnets = sortedSubnets(subnets)
			got := Counts(f.Router(name))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Counts = %+v\nby hand  %+v", got, want)
			}
		})
	}
}
