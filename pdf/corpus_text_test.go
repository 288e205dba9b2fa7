package pdf

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// corpusDoc is a document whose single service crosses every router of
// the predecessor's corpus, each hop carrying all of that router's policy
// rules and routes as steps and its first firewall rule as the deciding
// rule: the report then prints every rule and route text of the corpus.
func corpusDoc(t *testing.T) (*doc.Document, []string) {
	t.Helper()
	f, err := facts.Load(t.Context(), testenv.Corpus(t, "raw_facts"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &doc.Trace{Flow: "f1", Disposition: doc.Delivered}
	var texts []string
	for _, r := range f.Routers {
		h := &doc.Hop{Node: r.Name, Kind: doc.HopRouter}
		for _, pr := range r.Rules {
			h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepPolicy, Text: pr.Text})
			texts = append(texts, pr.Text)
		}
		for _, tb := range r.Tables {
			for _, rt := range tb.Routes {
				h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepRoute, Text: rt.Text})
				texts = append(texts, rt.Text)
			}
		}
	filter:
		for _, it := range r.Iptables {
			for _, c := range it.Chains {
				for i, rule := range c.Rules {
					h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepFilter, Table: it.Name, Chain: c.Name, Index: i + 1, Text: rule.Text, Action: "ACCEPT"})
					texts = append(texts, rule.Text)
					break filter
				}
			}
		}
		tr.Hops = append(tr.Hops, h)
	}
	d := &doc.Document{Schema: doc.Schema, Facts: &doc.FactsRef{Source: "corpus", Digest: "sha256:00"},
		Flows: []*doc.Flow{{ID: "f1", Src: "10.1.10.5", Dst: "10.3.20.10", Proto: "tcp", DPort: 22, Service: "ssh"}},
		Trace: []*doc.Trace{tr}}
	return d, texts
}

// expandTabs is what a terminal shows for a line with tabs.
func expandTabs(s string) string {
	var b strings.Builder
	col := 0
	for _, r := range s {
		if r == '\t' {
			n := tabWidth - col%tabWidth
			b.WriteString(strings.Repeat(" ", n))
			col += n
			continue
		}
		b.WriteRune(r)
		col++
	}
	return b.String()
}

// TestCorpusTextReadsAsWritten renders every policy rule and route of the
// facts corpus (whose `ip rule` lines hold a tab after the priority) and
// reads the PDF back with pdftotext: each text is there as it reads in a
// terminal — the tab a run of spaces up to the next tab stop, not a
// missing-glyph box — and nothing was replaced.
func TestCorpusTextReadsAsWritten(t *testing.T) {
	d, texts := corpusDoc(t)
	tabs := 0
	for _, s := range texts {
		if strings.Contains(s, "\t") {
			tabs++
		}
	}
	if tabs == 0 {
		t.Fatal("no corpus text holds a tab: the test proves nothing")
	}
	path, pages := report(t, d, Options{})
	validate(t, path)
	if plain := pageText(t, path, 1, pages); strings.ContainsAny(plain, "\t\uFFFD") {
		t.Errorf("the PDF text holds a tab or a replacement character")
	}
	// -layout keeps a wide gap wide: where the tab was, the text shows a
	// run of spaces (pdftotext approximates its width), where a space was,
	// one or more.
	var layout strings.Builder
	for p := 1; p <= pages; p++ {
		layout.WriteString(layoutText(t, path, p))
	}
	lt := layout.String()
	norm := strings.Join(strings.Fields(lt), " ")
	lost := 0
	for _, s := range texts {
		want := expandTabs(s)
		if !strings.Contains(norm, strings.Join(strings.Fields(want), " ")) {
			if lost++; lost <= 5 {
				t.Errorf("text %q is not in the PDF", s)
			}
			continue
		}
		if !strings.Contains(s, "\t") {
			continue
		}
		var parts []string
		for _, part := range regexp.MustCompile(` {2,}`).Split(want, -1) {
			words := strings.Fields(part)
			for i, w := range words {
				words[i] = regexp.QuoteMeta(w)
			}
			parts = append(parts, strings.Join(words, `\s+`))
		}
		re := strings.Join(parts, `\s{2,}`)
		if !regexp.MustCompile(re).MatchString(lt) {
			t.Errorf("%q does not read %q in the PDF (pdftotext -layout)", s, want)
		}
	}
	t.Logf("%d texts (%d with a tab) on %d pages", len(texts), tabs, pages)
}

// TestMissingGlyphsReplacedVisibly: a character no embedded font has and a
// control character in a rule are drawn as U+FFFD, which pdftotext reads
// back, instead of an invisible or box-shaped .notdef glyph; a "{nb}" in a
// rule is not taken for the page count.
func TestMissingGlyphsReplacedVisibly(t *testing.T) {
	d := loadFixture(t, "three")
	var st *doc.Step
	for _, h := range d.Trace[0].Hops {
		for _, s := range h.Steps {
			if s.Kind == doc.StepFilter && st == nil {
				st = s
			}
		}
	}
	if st == nil {
		t.Fatal("fixture has no filter step")
	}
	st.Text = "-A FORWARD -m comment --comment \"fire \U0001F525 bell\x07 {nb} \uE000nb\uE000\" -j ACCEPT"
	for _, r := range d.Reach[0].Routers {
		r.Rule = nil // show the trace's rule text
	}
	path, pages := report(t, d, Options{})
	validate(t, path)
	text := strings.Join(strings.Fields(pageText(t, path, 1, pages)), " ")
	// "{nb}" and the page-count alias itself are text, not the page count.
	if !strings.Contains(text, "\"fire \uFFFD bell\uFFFD {nb} \uFFFDnb\uFFFD\"") {
		t.Errorf("the PDF does not show the rule's characters replaced by U+FFFD, or replaced {nb}")
	}
}
