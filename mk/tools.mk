# Tools for people (issue 6): the browser console, `wsrelay connect`, `wsrelay bench`.
#   make test-tools          their tests only (headless Chromium, a pipe, a pty, bench vs serve)
#   make console-screenshot  refresh docs/console.png from the browser test's screenshot
.PHONY: test-tools console-screenshot

test-tools: install-test system-deps
	$(BIN)/pytest tests/tools

console-screenshot: install-test system-deps
	$(BIN)/pytest tests/tools/test_console_browser.py -k echo
	mkdir -p docs
	cp test-artifacts/console-closed.png docs/console.png
