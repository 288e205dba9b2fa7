// Package pdfcheck validates the PDFs tests write, with pdfcpu, and reads
// their page count. Only tests import it: the tsim binary must not link
// pdfcpu (its package initialisation costs every process about a
// millisecond of start-up, see docs/report.md), which
// TestBinaryDoesNotLinkPDFCPU checks.
package pdfcheck

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// fpdfOutlineCount is pdfcpu's strict-mode complaint about fpdf's outline:
// fpdf writes /Count 0 on every outline item, also on one with children
// (a merged file's document bookmarks), where PDF 32000-1 §12.3.3 wants
// minus the number of descendants for a closed item. Viewers show such an
// item closed, as intended; it is the only deviation accepted below.
const fpdfOutlineCount = "non-empty outline item: Count must be nonzero"

// Validate fails t unless pdfcpu accepts path in strict mode — or, when
// strict mode's only complaint is fpdf's outline /Count, in relaxed mode —
// and returns its page count.
func Validate(t testing.TB, path string) int {
	t.Helper()
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationStrict
	if err := api.ValidateFile(path, conf); err != nil {
		if !strings.Contains(err.Error(), fpdfOutlineCount) {
			t.Fatalf("pdfcpu strict validation of %s: %v", filepath.Base(path), err)
		}
		conf = model.NewDefaultConfiguration()
		conf.ValidationMode = model.ValidationRelaxed
		if err := api.ValidateFile(path, conf); err != nil {
			t.Fatalf("pdfcpu validation of %s: %v", filepath.Base(path), err)
		}
	}
	n, err := api.PageCountFile(path)
	if err != nil {
		t.Fatalf("pdfcpu page count of %s: %v", filepath.Base(path), err)
	}
	return n
}
