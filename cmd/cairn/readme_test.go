package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// readmeBlock is one ```sh block of the README, and the line it starts on.
type readmeBlock struct {
	line int
	text string
}

// readmeBlocks returns the README's shell blocks.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []readmeBlock
		cur    *strings.Builder
		start  int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && l == "```sh":
			cur, start = &strings.Builder{}, n+1
		case cur != nil && l == "```":
			blocks = append(blocks, readmeBlock{start, cur.String()})
			cur = nil
		case cur != nil:
			cur.WriteString(l + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// example reports whether a README block is an example of the running
// server's use, to be run as written: it calls the API with curl or an
// admin command (`go run ./cmd/cairn`, or `cairn` as installed), and does
// not install, build, start a server or need another service or
// machine.
func example(b string) bool {
	if !strings.Contains(b, "curl ") && !strings.Contains(b, "go run ./cmd/cairn ") && !strings.HasPrefix(b, "cairn ") &&
		!strings.Contains(b, "\ncairn ") && !hasPlaceholder(b) {
		return false
	}
	for _, not := range []string{"sudo ", "docker ", "cairn serve", "export ", "go build", "go test"} {
		if strings.Contains(b, not) {
			return false
		}
	}
	return true
}

// placeholders are the README's values for the reader to fill in, and
// what the test fills in: alice's secret, as `cairn user add` printed it
// earlier in the session.
var placeholders = map[string]string{
	"SECRET=...": `SECRET=$(sed -n 's/^secret: //p' readme.out | tail -1)`,
}

func hasPlaceholder(b string) bool {
	for k := range placeholders {
		if strings.Contains(b, k) {
			return true
		}
	}
	return false
}

// refusals are the README examples that show a refusal: what part of the
// URL asked for it, and its status.
var refusals = map[string]string{"w=65": "400"}

// TestREADMEExamples runs every example of the README that uses the
// running server (each API's curl examples, the admin commands beside
// them), in order, in one shell session as a reader pasting them into a
// terminal would, against `cairn serve` with its defaults in the working
// folder; `go run ./cmd/cairn` is the built binary. Only the server's
// address (a free port, not 8080) and the placeholders are changed. Every
// command must succeed, every request answer below 400 (but the
// refusals shown as such), every "same bytes" be printed; each API's
// examples must be there.
func TestREADMEExamples(t *testing.T) {
	bash := testtool.Path(t, "bash", "apt-get install -y bash")
	testtool.Path(t, "curl", "apt-get install -y curl")
	testtool.Path(t, "openssl", "apt-get install -y openssl")
	cairn := testtool.Cairn(t)
	var script strings.Builder
	var ran []int
	for _, b := range readmeBlocks(t) {
		if example(b.text) {
			script.WriteString(b.text)
			ran = append(ran, b.line)
		}
	}
	text := script.String()
	t.Logf("the README's blocks at lines %v", ran)
	for _, api := range []string{"/public/277/", "/cms/v2/content", "/v1/media", "/media/shop/assets", "/storage/public/files", "/storage/user/uploads", "cairn backup"} {
		if !strings.Contains(text, api) {
			t.Errorf("the README's examples (blocks at lines %v) do not use %s", ran, api)
		}
	}
	for k, v := range placeholders {
		if !strings.Contains(text, k) {
			t.Errorf("the README has no placeholder %q any more", k)
		}
		text = strings.ReplaceAll(text, k, v)
	}

	dir := t.TempDir()
	t.Chdir(dir)
	base, stop := startServe(t, nil, noEnv)
	text = strings.ReplaceAll(text, "http://127.0.0.1:9180/metrics", metricsURL(base))
	text = strings.ReplaceAll(text, "http://127.0.0.1:8080", base)

	// curl notes each answer's status on stderr, but where the example
	// writes its own (-w), which then prints it.
	const prelude = `set -e
curl() {
	case " $* " in
	*" -w "*|*" --write-out "*) command curl "$@" ;;
	*) command curl -w '%{stderr}status %{http_code} %{url_effective}\n' "$@" ;;
	esac
}
cairn() { "$CAIRN" "$@"; }
go() {
	if [ "$1" = run ] && [ "$2" = ./cmd/cairn ]; then
		shift 2
		cairn "$@"
	else
		echo "not an example's go command: go $*" >&2
		return 1
	fi
}
`
	out, err := os.Create(filepath.Join(dir, "readme.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var stderr strings.Builder
	cmd := exec.Command(bash, "-c", prelude+text)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, &stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C", "CAIRN=" + cairn}
	runErr := cmd.Run()
	stdout, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if runErr != nil {
		t.Fatalf("the README's examples (blocks at lines %v) failed: %v\nstdout:\n%s\nstderr:\n%s", ran, runErr, stdout, stderr.String())
	}

	status := regexp.MustCompile(`^status (\d{3}) (.*)$`)
	code := regexp.MustCompile(`^\d{3}$`)
	refused := map[string]bool{}
	n := 0
	for _, l := range strings.Split(stderr.String(), "\n") {
		m := status.FindStringSubmatch(l)
		if m == nil {
			if l != "" {
				t.Errorf("on stderr: %s", l)
			}
			continue
		}
		n++
		want := ""
		for part, c := range refusals {
			if strings.Contains(m[2], part) {
				want = c
				refused[part] = m[1] == c
			}
		}
		if (want == "" && (m[1] < "100" || m[1] >= "400")) || (want != "" && m[1] != want) {
			t.Errorf("%s answered %s", m[2], m[1])
		}
	}
	lines := strings.Split(string(stdout), "\n")
	for _, l := range lines {
		if code.MatchString(l) {
			n++
			if l < "100" || l >= "400" {
				t.Errorf("an example printed the status %s", l)
			}
		}
	}
	for part := range refusals {
		if !refused[part] {
			t.Errorf("no example asked for %s and was refused", part)
		}
	}
	same := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "same bytes") {
			same++
		}
	}
	if want := strings.Count(text, "echo same bytes"); same != want {
		t.Errorf("%d of %d comparisons printed \"same bytes\"", same, want)
	}
	if n < 40 {
		t.Errorf("only %d answers seen", n)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr.String())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
