// Package fsx owns tsim's one way of replacing a file: write a temporary
// file in the same directory, sync it, give it its mode, rename it over the
// target. Readers see the old file or the new one, never half of either,
// and a failure leaves no partial file behind.
package fsx

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data, with permissions perm.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic replaces path with what write writes, with permissions
// perm, streamed to the temporary file (nothing is held in memory). When
// write fails, path is left as it was and its error is returned, wrapped.
func WriteAtomic(path string, perm fs.FileMode, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	err = tmp.Chmod(perm)
	if err == nil {
		bw := bufio.NewWriterSize(tmp, 256<<10)
		err = write(bw)
		if err == nil {
			err = bw.Flush()
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
