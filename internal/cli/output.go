package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

func sortStrings(s []string) { sort.Strings(s) }

// WriteOutput writes text to path atomically (a temporary file in the same
// directory, then rename), so a failed run never leaves a partial file; with
// path "" or "-" it writes to stdout. A path that is a symbolic link is
// written through: the file it names is replaced, the link stays. A path
// that is not a regular file (/dev/null, /dev/stdout, a named pipe) is
// written to as it is: renaming over it would replace the device or pipe
// with a file (as root, /dev/null itself).
func WriteOutput(path, text string, stdout io.Writer) error {
	if path == "" || path == "-" {
		_, err := io.WriteString(stdout, text)
		return err
	}
	target := path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		target = resolved
	}
	if fi, err := os.Stat(target); err == nil {
		switch {
		case fi.IsDir():
			return fmt.Errorf("writing %s: is a directory", path)
		case !fi.Mode().IsRegular():
			f, err := os.OpenFile(target, os.O_WRONLY, 0)
			if err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
			if _, err := io.WriteString(f, text); err != nil {
				f.Close()
				return fmt.Errorf("writing %s: %w", path, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
			return nil
		}
	}
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	if _, err := io.WriteString(tmp, text); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(name, target); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
