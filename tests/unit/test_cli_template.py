"""The Go-template subset behind ``--format``: what users write for docker inspect."""

from __future__ import annotations

import pytest

from berth.cli.template import TemplateError, go_print, render_template

OBJ = {
    "Id": "abc",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "ExitCode": 0, "Pid": 42},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {}, "Cmd": None, "Tty": False},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"},
                                     "alt": {"IPAddress": "10.0.0.2"}}},
}


@pytest.mark.parametrize(("template", "text"), [
    ("{{.State.Status}}", "running"),
    ("{{.Id}}", "abc"),
    ("{{ .Name }}", "/web"),
    ("{{json .Config}}", '{"Env":["A=1","B=2"],"Labels":{},"Cmd":null,"Tty":false}'),
    ("{{json .State.Status}}", '"running"'),
    ("{{.State.Pid}} {{.State.Running}} {{.Config.Tty}}", "42 true false"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Labels}}", "map[]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Missing.Deeper}}", "<no value>"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.0.0.2 172.17.0.2 "),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range .Config.Labels}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Config.Tty}}t{{else if .State.Running}}r{{else}}n{{end}}", "r"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ('{{index .NetworkSettings.Networks "bridge"}}', "map[IPAddress:172.17.0.2]"),
    ('{{join .Config.Env ","}}', "A=1,B=2"),
    ("{{.State.Status | upper}}", "RUNNING"),
    ("{{len .Config.Env}}", "2"),
    ("a {{- .Id -}} b", "aabcb"),
    ("{{/* a comment */}}x", "x"),
    ("{{$.Id}}", "abc"),
])
def test_templates(template: str, text: str) -> None:
    assert render_template(template, OBJ) == text


@pytest.mark.parametrize("template", ["{{if .Id}}", "{{end}}", "{{.Id | }}", "{{nosuch .Id}}",
                                      "{{.Id.Deeper}}"])
def test_bad_templates_raise(template: str) -> None:
    with pytest.raises(TemplateError):
        render_template(template, OBJ)


def test_go_print_numbers() -> None:
    assert go_print(3.0) == "3"
    assert go_print(2.5) == "2.5"
    assert go_print({"b": 1, "a": [True, None]}) == "map[a:[true <nil>] b:1]"
