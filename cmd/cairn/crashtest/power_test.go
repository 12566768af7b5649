package crashtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testtool"
)

// mounted is a file system on a loop device, mounted at dir.
type mounted struct {
	t        *testing.T
	img, dir string
	dev      string
	mount    func()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// loopFS makes an image of size bytes, formats it with mkfs (nil: tmpfs
// instead, of that size) and mounts it; the test's cleanup unmounts it.
func loopFS(t *testing.T, size string, mkfs []string) *mounted {
	t.Helper()
	testtool.Root(t, "mounting a file system")
	for _, tool := range []string{"mount", "umount", "losetup"} {
		testtool.Path(t, tool, "apt-get install -y mount")
	}
	base := t.TempDir()
	m := &mounted{t: t, img: filepath.Join(base, "fs.img"), dir: filepath.Join(base, "mnt")}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if mkfs == nil {
		m.mount = func() { run(t, "mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", m.dir) }
	} else {
		run(t, "truncate", "-s", size, m.img)
		m.dev = strings.TrimSpace(run(t, "losetup", "--find", "--show", m.img))
		run(t, mkfs[0], append(mkfs[1:], m.dev)...)
		m.mount = func() { run(t, "mount", m.dev, m.dir) }
	}
	m.mount()
	t.Cleanup(func() {
		exec.Command("umount", "-l", m.dir).Run()
		if m.dev != "" {
			exec.Command("losetup", "-d", m.dev).Run()
		}
	})
	return m
}

func (m *mounted) remount() {
	run(m.t, "umount", m.dir)
	m.mount()
}

// TestPowerLoss: the crash test on XFS, where each crash is first an
// `xfs_io -x -c shutdown` without flushing the log, as a power cut would
// leave the disk, then SIGKILL, then an unmount and a mount that replays
// the log.
//
// Opt-in (-powerloss) while an open finding stands: about once in 60 to
// 80 cycles an upload acknowledged within a few milliseconds of the
// shutdown is missing from the index after the log replay, though Check
// and scrub pass. CAIRN_KEEP_LOST=<dir> keeps the data folder of such a
// cycle for inspection.
func TestPowerLoss(t *testing.T) {
	if !*powerLoss {
		t.Skip("opt-in until the open finding above is resolved: go test ./cmd/cairn/crashtest -run PowerLoss -args -powerloss")
	}
	mkfs := testtool.Path(t, "mkfs.xfs", "apt-get install -y xfsprogs")
	xfsIO := testtool.Path(t, "xfs_io", "apt-get install -y xfsprogs")
	m := loopFS(t, "2G", []string{mkfs, "-q", "-f"})
	cycles := *powerCycles
	if testing.Short() {
		cycles = 2
	}
	data := filepath.Join(m.dir, "data")
	crashLoop(t, data, cycles, func(p *proc) {
		start := time.Now()
		run(t, xfsIO, "-x", "-c", "shutdown", m.dir) // no -f: the log is not flushed
		t.Logf("xfs_io shutdown took %v", time.Since(start))
		p.kill()
	}, m.remount)
}
