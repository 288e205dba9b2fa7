package users

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheck: any stored hash string, however mangled, gives an answer or
// an error — never a panic, never a match for a hash it did not make.
func FuzzCheck(f *testing.F) {
	h, _ := Hash("pw")
	f.Add(h, "pw")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", "")
	f.Add("salt$abcdef", "x")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$$", "pw")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		// Keep each run cheap: the parameters bound a login's cost anyway.
		if strings.Contains(hash, "m=") && !strings.Contains(hash, "m=1,") {
			return
		}
		ok, err := Check(hash, pw)
		if ok && err != nil {
			t.Fatalf("Check(%q) = true with error %v", hash, err)
		}
	})
}

// FuzzOpen: a users file with any content opens or fails with an error
// naming the file.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"users":[{"name":"a","role":"user","hash":"x","created":"2026-01-02T03:04:05Z"}]}`))
	f.Add([]byte(`{"users":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{0xff, 0xfe})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "users.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		u, err := openNoDummy(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "users file") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if _, err := u.List(); err != nil {
			t.Fatalf("List after a successful Open: %v", err)
		}
	})
}
