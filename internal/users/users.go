// Package users owns tsim serve's local users file: names, roles and
// argon2id password hashes in one JSON file (mode 0600, replaced atomically
// on every change, re-read when it changes on disk). It knows nothing of
// HTTP or sessions.
package users

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tsim-dev/tsim/internal/fsx"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// Roles.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// argon2id parameters (RFC 9106 second recommendation scaled down to the
// OWASP minimum of 19 MiB so a login costs ~30 ms and little memory).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// MinPasswordLen is the shortest password accepted by Add and SetPassword.
const MinPasswordLen = 8

// nameOK tells whether name is 1-32 of a-z 0-9 _ . - starting with a
// letter or _ (a loop, not a regexp: compiling one at start-up cost every
// tsim command 0.2 ms).
func nameOK(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case (c >= '0' && c <= '9') || c == '.' || c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// ErrNoUser is returned for operations on a user not in the file.
var ErrNoUser = errors.New("no such user")

// User is one entry of the file.
type User struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	Changed time.Time `json:"changed,omitempty"`
}

type fileData struct {
	Users []*User `json:"users"`
}

// File is a users file. Methods are safe for concurrent use within one
// process; writers in other processes (tsim users …) are noticed by the
// file's inode, modification time and size.
type File struct {
	path string

	mu    sync.Mutex
	users map[string]*User
	stamp string // mtime+size of what users was read from
	dummy string // hash verified for unknown users, so timing does not tell
}

// Open returns the users file at path. A missing file is an empty one
// (created on the first Add).
func Open(path string) (*File, error) {
	f, err := openNoDummy(path)
	if err != nil {
		return nil, err
	}
	h, err := Hash("not a password of anyone")
	if err != nil {
		return nil, err
	}
	f.dummy = h
	return f, nil
}

func openNoDummy(path string) (*File, error) {
	if path == "" {
		return nil, tsimerr.Inputf("users file: no path given")
	}
	f := &File{path: path}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reloadLocked(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

func statStamp(path string) (string, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "missing", nil
	}
	if err != nil {
		return "", err
	}
	// Every write renames a new file into place, so the inode changes even
	// when two writes fall into one timestamp tick with equal sizes.
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	return fmt.Sprintf("%d/%d/%d", ino, st.ModTime().UnixNano(), st.Size()), nil
}

// reloadLocked re-reads the file when its stamp changed.
func (f *File) reloadLocked() error {
	stamp, err := statStamp(f.path)
	if err != nil {
		return tsimerr.Env(fmt.Errorf("users file: %w", err))
	}
	if stamp == f.stamp && f.users != nil {
		return nil
	}
	users := map[string]*User{}
	data, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return tsimerr.Env(fmt.Errorf("users file: %w", err))
	default:
		var fd fileData
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fd); err != nil {
			return tsimerr.Inputf("users file %s: %v", f.path, err)
		}
		for i, u := range fd.Users {
			if u == nil || !nameOK(u.Name) || (u.Role != RoleUser && u.Role != RoleAdmin) {
				return tsimerr.Inputf("users file %s: entry %d: bad name or role", f.path, i+1)
			}
			users[u.Name] = u
		}
	}
	f.users, f.stamp = users, stamp
	return nil
}

// writeLocked replaces the file atomically (temp file in the same
// directory, fsync, rename) with mode 0600.
func (f *File) writeLocked() error {
	fd := fileData{Users: make([]*User, 0, len(f.users))}
	for _, u := range f.users {
		fd.Users = append(fd.Users, u)
	}
	sort.Slice(fd.Users, func(i, j int) bool { return fd.Users[i].Name < fd.Users[j].Name })
	data, err := json.MarshalIndent(fd, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tsimerr.Env(fmt.Errorf("users file: %w", err))
	}
	if err := fsx.WriteFileAtomic(f.path, append(data, '\n'), 0o600); err != nil {
		return tsimerr.Env(fmt.Errorf("users file: %w", err))
	}
	f.stamp, _ = statStamp(f.path)
	return nil
}

// ValidName checks a user name: lower-case letters, digits, _ . -, at most
// 32 characters, not starting with a digit, dot or dash.
func ValidName(name string) error {
	if !nameOK(name) {
		return tsimerr.Inputf("user name %q: want 1-32 of a-z 0-9 _ . - starting with a letter or _", name)
	}
	return nil
}

// ValidRole checks a role name.
func ValidRole(role string) error {
	if role != RoleUser && role != RoleAdmin {
		return tsimerr.Inputf("role %q: want user or admin", role)
	}
	return nil
}

func validPassword(pw string) error {
	if len(pw) < MinPasswordLen {
		return tsimerr.Inputf("password: at least %d characters", MinPasswordLen)
	}
	if len(pw) > 1024 {
		return tsimerr.Inputf("password: at most 1024 bytes")
	}
	return nil
}

// Add creates a user; it is an input error if the name exists.
func (f *File) Add(name, role, password string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := ValidRole(role); err != nil {
		return err
	}
	if err := validPassword(password); err != nil {
		return err
	}
	h, err := Hash(password)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reloadLocked(); err != nil {
		return err
	}
	if _, ok := f.users[name]; ok {
		return tsimerr.Inputf("user %q exists (use passwd to change the password)", name)
	}
	f.users[name] = &User{Name: name, Role: role, Hash: h, Created: time.Now().UTC()}
	return f.writeLocked()
}

// SetPassword replaces a user's password.
func (f *File) SetPassword(name, password string) error {
	if err := validPassword(password); err != nil {
		return err
	}
	h, err := Hash(password)
	if err != nil {
		return err
	}
	return f.update(name, func(u *User) { u.Hash = h })
}

// SetRole changes a user's role.
func (f *File) SetRole(name, role string) error {
	if err := ValidRole(role); err != nil {
		return err
	}
	return f.update(name, func(u *User) { u.Role = role })
}

// update changes a copy of the user's entry and writes the file.
func (f *File) update(name string, change func(*User)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reloadLocked(); err != nil {
		return err
	}
	u, ok := f.users[name]
	if !ok {
		return tsimerr.Input(fmt.Errorf("user %q: %w", name, ErrNoUser))
	}
	cp := *u
	change(&cp)
	cp.Changed = time.Now().UTC()
	f.users[name] = &cp
	return f.writeLocked()
}

// Delete removes a user.
func (f *File) Delete(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reloadLocked(); err != nil {
		return err
	}
	if _, ok := f.users[name]; !ok {
		return tsimerr.Input(fmt.Errorf("user %q: %w", name, ErrNoUser))
	}
	delete(f.users, name)
	return f.writeLocked()
}

// List returns the users sorted by name, without hashes.
func (f *File) List() ([]User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reloadLocked(); err != nil {
		return nil, err
	}
	out := make([]User, 0, len(f.users))
	for _, u := range f.users {
		cp := *u
		cp.Hash = ""
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup reports whether name is in the file and its role.
func (f *File) Lookup(name string) (role string, ok bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reloadLocked(); err != nil {
		return "", false, err
	}
	u, ok := f.users[name]
	if !ok {
		return "", false, nil
	}
	return u.Role, true, nil
}

// Verify checks a password. exists says whether the user is in the file
// (so a caller can decide about other authenticators); ok is true only
// for the right password. An unknown user costs the same hash as a known
// one.
func (f *File) Verify(name, password string) (role string, exists, ok bool, err error) {
	f.mu.Lock()
	if err := f.reloadLocked(); err != nil {
		f.mu.Unlock()
		return "", false, false, err
	}
	u, exists := f.users[name]
	hash := f.dummy
	if exists {
		hash, role = u.Hash, u.Role
	}
	f.mu.Unlock()
	match, err := Check(hash, password)
	if err != nil {
		return "", exists, false, fmt.Errorf("user %q: %w", name, err)
	}
	return role, exists, match && exists, nil
}

// Hash returns the PHC string of an argon2id hash of password with a fresh
// random salt.
func Hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check compares password with a PHC argon2id hash in constant time. The
// parameters come from the hash, so files written with other costs still
// verify.
func Check(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("hash is not argon2id")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("unsupported argon2 version")
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, errors.New("bad argon2 parameters")
	}
	// Bound the cost an edited file can impose on each login.
	if m == 0 || m > 1<<18 || t == 0 || t > 16 || p == 0 {
		return false, errors.New("argon2 parameters out of range")
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("bad salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, errors.New("bad key")
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
