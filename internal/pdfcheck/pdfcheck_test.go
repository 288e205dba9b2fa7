package pdfcheck

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBinaryDoesNotLinkPDFCPU: pdfcpu is a test dependency; no package the
// tsim binary is built from may import it.
func TestBinaryDoesNotLinkPDFCPU(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "github.com/tsim-dev/tsim/cmd/tsim").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "pdfcpu") || strings.HasSuffix(p, "/internal/pdfcheck") {
			t.Errorf("the tsim binary links %s", p)
		}
	}
}
