"""The configuration folder as the service holds it: read whole (hidden files aside), refused at
start when it does not load, swapped only for a version that loads, and its webhooks' URLs and
secrets read from the environment — required in production, reported per webhook elsewhere."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from services.notify.adapters import config_files
from services.notify.adapters.config_files import ConfigHolder, Endpoint, read_config_dir
from services.notify.domain.errors import RulesError
from tests.notify.story import NOTIFY_DIR

ENV = {
    "NOTIFY_ACME_OPS_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send?access_token=t",
    "NOTIFY_ACME_OPS_DINGTALK_SECRET": "SECs",
    "NOTIFY_ACME_DEV_WECOM_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
    "NOTIFY_GLOBEX_OPS_SECRET": "g",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "notify"
    shutil.copytree(NOTIFY_DIR, target)
    return target


def holder(folder: Path, env: dict[str, str] = ENV, *, strict: bool = False) -> ConfigHolder:
    return ConfigHolder(folder, env, strict_env=strict, poll_seconds=0.05)


def test_the_folder_is_read_whole_without_hidden_files(folder: Path) -> None:
    (folder / ".rules.toml.swp").write_bytes(b"\x00editor state")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    files = read_config_dir(folder)
    assert "rules.toml" in files
    assert "templates/receipt.zh-CN.txt.j2" in files
    assert "orgs/globex/rules.toml" in files
    assert not [p for p in files if p.startswith(".") or "/." in p]


def test_folders_behind_links_are_read_as_a_kubernetes_volume_shows_them(folder: Path, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    (volume / "..2026_03_02").mkdir(parents=True)
    shutil.copytree(folder, volume / "..2026_03_02" / "files")
    (volume / "..data").symlink_to("..2026_03_02/files")
    for name in sorted(p.name for p in folder.iterdir()):
        (volume / name).symlink_to(f"..data/{name}")
    assert read_config_dir(volume) == read_config_dir(folder)


def test_a_configmap_holds_the_folder_flat_with_double_underscores_for_slashes(folder: Path, tmp_path: Path) -> None:
    """ConfigMap keys cannot contain "/": `templates__receipt.zh-CN.txt.j2` is templates/receipt.zh-CN.txt.j2."""
    volume = tmp_path / "configmap"
    (volume / "..2026_03_02").mkdir(parents=True)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = path.relative_to(folder).as_posix().replace("/", "__")
        (volume / "..2026_03_02" / key).write_bytes(path.read_bytes())
        (volume / key).symlink_to(f"..data/{key}")
    (volume / "..data").symlink_to("..2026_03_02")
    assert read_config_dir(volume) == read_config_dir(folder)
    assert "templates/_footer.zh-CN.txt.j2" in read_config_dir(volume)  # "templates___footer…"
    holder(volume).load_initial()

    (volume / "rules.toml").unlink()
    (volume / "templates").mkdir()
    (volume / "templates" / "receipt.zh-CN.txt.j2").write_bytes(b"{{ ticket.number }}")
    with pytest.raises(RulesError) as twice:
        read_config_dir(volume)
    assert "templates__receipt.zh-CN.txt.j2: is templates/receipt.zh-CN.txt.j2 a second time" in str(twice.value)


def test_the_service_refuses_to_start_on_a_configuration_that_does_not_load(folder: Path, tmp_path: Path) -> None:
    (folder / "directory.toml").unlink()
    with pytest.raises(RulesError) as refused:
        holder(folder).load_initial()
    assert [(p.file, p.message.split(":")[0]) for p in refused.value.problems] == [("directory.toml", "missing")]
    with pytest.raises(RulesError) as nowhere:
        holder(tmp_path / "absent").load_initial()
    assert "not a folder" in str(nowhere.value)


def test_only_a_changed_configuration_that_loads_goes_into_force(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    held = holder(folder)
    held.load_initial()
    first = held.current
    assert held.check() is False  # nothing changed

    rules = folder / "rules.toml"
    good = rules.read_text()
    rules.write_text(good.replace('to = "requester"', 'to = "requestor"', 1))
    with caplog.at_level(logging.ERROR):
        assert held.check() is False  # seen changed: read at the next look if it stays so
        assert held.check() is False
        assert held.check() is False  # the same broken version is reported once
    assert held.current is first
    assert held.rejected is not None
    (problem,) = held.rejected.problems
    assert problem.file == "rules.toml"
    assert problem.path.endswith(".to")
    assert "did you mean 'requester'" in problem.message
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    rules.write_text(good.replace('template = "closure"', 'template = "closure"\nlocale = "en"'))
    assert held.check() is False
    assert held.check() is True
    assert held.current is not first
    assert held.rejected is None
    assert held.current.notify.rules.default.deliveries("ticket.closed")[0].locale == "en"


def test_a_file_caught_half_written_never_goes_into_force(folder: Path) -> None:
    """Editors save by truncating the file and writing it again: the empty template in between
    is valid, but serving it would send empty mails until the next look."""
    held = holder(folder)
    held.load_initial()
    first = held.current
    template = folder / "templates" / "receipt.zh-CN.txt.j2"
    edited = template.read_text().replace("您好，您的服务单已受理", "您好！服务单已登记", 1)

    template.write_text("")  # the editor is between truncating and writing
    assert held.check() is False
    template.write_text(edited)
    assert held.check() is False
    assert held.current is first
    assert held.check() is True  # the saved file, unchanged since the last look
    assert "您好！服务单已登记" in held.current.notify.templates.sources["receipt.zh-CN.txt.j2"]


def test_a_file_changed_while_it_was_read_is_read_again(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held = holder(folder)
    held.load_initial()
    first = held.current
    template = folder / "templates" / "receipt.zh-CN.txt.j2"
    original = template.read_text()
    template.write_text("")
    assert held.check() is False

    read = config_files.read_config_dir

    def read_then_saved(root: Path) -> dict[str, bytes]:
        files = read(root)
        template.write_text(original + "\n")  # the editor's write lands just after the read
        return files

    monkeypatch.setattr(config_files, "read_config_dir", read_then_saved)
    assert held.check() is False  # what was read (the empty file) is not what is there now
    assert held.current is first
    monkeypatch.setattr(config_files, "read_config_dir", read)
    assert held.check() is True
    assert held.current.notify.templates.sources["receipt.zh-CN.txt.j2"] == original + "\n"


def test_webhook_urls_and_secrets_come_from_the_environment(folder: Path) -> None:
    held = holder(folder)
    held.load_initial()
    assert held.endpoint("acme", "acme-ops-dingtalk") == Endpoint(
        "dingtalk", ENV["NOTIFY_ACME_OPS_DINGTALK_URL"], "SECs"
    )
    assert held.endpoint("acme", "acme-dev-wecom") == Endpoint("wecom", ENV["NOTIFY_ACME_DEV_WECOM_URL"], "")
    assert held.endpoint("globex", "globex-ops") == Endpoint("generic", "https://hooks.globex.example/supportflow", "g")
    assert "no webhook 'gone'" in str(held.endpoint("acme", "gone"))
    assert held.current.unusable_webhooks == {}


def test_an_unset_variable_is_reported_per_webhook_outside_production(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {k: v for k, v in ENV.items() if k != "NOTIFY_ACME_DEV_WECOM_URL"}
    held = holder(folder, env)
    with caplog.at_level(logging.WARNING):
        held.load_initial()
    reason = held.current.unusable_webhooks[("acme", "acme-dev-wecom")]
    assert "NOTIFY_ACME_DEV_WECOM_URL is not set" in reason
    assert "orgs.acme.webhooks.acme-dev-wecom.url_env" in reason
    assert held.endpoint("acme", "acme-dev-wecom") == reason
    assert isinstance(held.endpoint("acme", "acme-ops-dingtalk"), Endpoint)
    assert any("NOTIFY_ACME_DEV_WECOM_URL" in r.getMessage() for r in caplog.records)


def test_in_production_an_unset_or_wrong_variable_makes_the_configuration_invalid(folder: Path) -> None:
    env = {**ENV, "NOTIFY_ACME_OPS_DINGTALK_URL": "oapi.dingtalk.com/robot/send"}
    del env["NOTIFY_GLOBEX_OPS_SECRET"]
    with pytest.raises(RulesError) as refused:
        holder(folder, env, strict=True).load_initial()
    found = {(p.file, p.path): p.message for p in refused.value.problems}
    assert set(found) == {
        ("directory.toml", "orgs.acme.webhooks.acme-ops-dingtalk.url_env"),
        ("directory.toml", "orgs.globex.webhooks.globex-ops.secret_env"),
    }
    assert (
        "NOTIFY_ACME_OPS_DINGTALK_URL holds no http(s) URL"
        in found[("directory.toml", "orgs.acme.webhooks.acme-ops-dingtalk.url_env")]
    )
    assert (
        "NOTIFY_GLOBEX_OPS_SECRET is not set" in found[("directory.toml", "orgs.globex.webhooks.globex-ops.secret_env")]
    )
