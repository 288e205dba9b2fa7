package users

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAddVerifyPasswdDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "users.json")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Add("alice", RoleAdmin, "s3cret pass"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode: %v %v", err, st)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "s3cret") || !strings.Contains(string(data), "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("file content:\n%s", data)
	}
	tests := []struct {
		name, pw      string
		exists, match bool
	}{
		{"alice", "s3cret pass", true, true},
		{"alice", "s3cret pasS", true, false},
		{"alice", "", true, false},
		{"bob", "s3cret pass", false, false},
	}
	for _, tc := range tests {
		role, exists, ok, err := f.Verify(tc.name, tc.pw)
		if err != nil || exists != tc.exists || ok != tc.match || (ok && role != RoleAdmin) {
			t.Errorf("Verify(%q, %q) = %q %v %v %v", tc.name, tc.pw, role, exists, ok, err)
		}
	}
	if err := f.Add("alice", RoleUser, "another pass"); err == nil {
		t.Error("duplicate add accepted")
	}
	if err := f.SetPassword("alice", "new password"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := f.Verify("alice", "s3cret pass"); ok {
		t.Error("old password still valid")
	}
	if _, _, ok, _ := f.Verify("alice", "new password"); !ok {
		t.Error("new password refused")
	}
	if err := f.SetRole("alice", RoleUser); err != nil {
		t.Fatal(err)
	}
	if role, _, _ := f.Lookup("alice"); role != RoleUser {
		t.Errorf("role after SetRole: %q", role)
	}
	if err := f.Delete("alice"); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete("alice"); !errors.Is(err, ErrNoUser) {
		t.Errorf("second delete: %v", err)
	}
	if err := f.SetPassword("nobody", "whatever1"); !errors.Is(err, ErrNoUser) {
		t.Errorf("passwd of a missing user: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}

func TestBadInput(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, role, pw, msg string }{
		{"Alice", RoleUser, "password1", "user name"},
		{"9lives", RoleUser, "password1", "user name"},
		{"a b", RoleUser, "password1", "user name"},
		{"../etc", RoleUser, "password1", "user name"},
		{strings.Repeat("a", 33), RoleUser, "password1", "user name"},
		{"carol", "root", "password1", "role"},
		{"carol", RoleUser, "short", "at least 8"},
	} {
		if err := f.Add(tc.name, tc.role, tc.pw); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Add(%q, %q, %q) = %v, want %q", tc.name, tc.role, tc.pw, err, tc.msg)
		}
	}
}

// A second process (tsim users add) changes the file; a running server
// sees the change at the next check.
func TestReReadOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	server, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, exists, _, _ := server.Verify("dave", "password1"); exists {
		t.Fatal("dave exists before being added")
	}
	cli, _ := Open(path)
	if err := cli.Add("dave", RoleUser, "password1"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := server.Verify("dave", "password1"); !ok {
		t.Error("server did not see the added user")
	}
	if err := cli.Delete("dave"); err != nil {
		t.Fatal(err)
	}
	if _, exists, _, _ := server.Verify("dave", "password1"); exists {
		t.Error("server did not see the deletion")
	}
}

func TestCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	for _, content := range []string{"{", `{"users":[{"name":"A","role":"user"}]}`, `{"users":[],"extra":1}`, `{"users":[{"name":"a","role":"god"}]}`} {
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%q) = %v, want an error naming the file", content, err)
		}
	}
}

func TestCheckRejectsForeignHashes(t *testing.T) {
	h, err := Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	for _, bad := range []string{
		"", "abc$def", "salt$" + strings.Repeat("0", 64), // the predecessor's salt$sha256
		"$argon2i$v=19$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=16$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=4194304,t=2,p=1$" + parts[4] + "$" + parts[5], // 4 GiB per login
		"$argon2id$v=19$m=19456,t=2,p=1$!!$" + parts[5],
	} {
		if ok, err := Check(bad, "pw"); ok || err == nil {
			t.Errorf("Check(%q) = %v, %v", bad, ok, err)
		}
	}
	if ok, err := Check(h, "pw"); !ok || err != nil {
		t.Errorf("Check(own hash) = %v, %v", ok, err)
	}
}

// Unknown users cost a full hash too, so response time does not reveal
// which names exist.
func TestUnknownUserCostsAHash(t *testing.T) {
	f, _ := Open(filepath.Join(t.TempDir(), "users.json"))
	f.Add("erin", RoleUser, "password1")
	timeit := func(name string) time.Duration {
		best := time.Hour
		for i := 0; i < 3; i++ {
			start := time.Now()
			f.Verify(name, "wrong password")
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := timeit("erin"), timeit("nobody")
	if unknown < known/3 {
		t.Errorf("unknown user verified in %s, known in %s: timing reveals existence", unknown, known)
	}
}
