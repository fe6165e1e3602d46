package modelserver

import "os/exec"

func runPython(code string) error {
	return exec.Command("/usr/bin/python3", "-c", code).Run()
}

func pythonOutput(code string) (string, error) {
	out, err := exec.Command("/usr/bin/python3", "-c", code).CombinedOutput()
	return string(out), err
}
