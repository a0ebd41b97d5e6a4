"""The AMI wrapper and phone re-sync, against a scripted AMI peer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from click.testing import CliRunner

from telefeatures.ami import NOTIFY_EVENTS, AmiClient, AmiError, AmiSettings
from telefeatures.cli import cli
from telefeatures.cli.provision import NOTIFY_EVENT_NAMES

from .conftest import SITE, phone_toml
from .fake_ami import FakeAmi


def settings(ami: FakeAmi, **over) -> AmiSettings:
    return AmiSettings(**{"host": "127.0.0.1", "port": ami.port, "username": "tf", "secret": "s3cret",
                          "timeout": 2.0} | over)


async def test_notify_check_sync_and_report_failures():
    with FakeAmi(endpoints={"1001"}) as ami:
        async with AmiClient(settings(ami)) as client:
            ok = await client.pjsip_notify("1001")
            missing = await client.pjsip_notify("1999")
    assert ok.ok and ok.message == "NOTIFY sent"
    assert not missing.ok and missing.message == "Unable to retrieve endpoint 1999"
    login = dict(ami.actions_named("Login")[0])
    assert login["Username"] == "tf" and login["Secret"] == "s3cret" and login["Events"] == "off"
    sent = ami.actions_named("PJSIPNotify")[0]
    assert ("Endpoint", "1001") in sent and ("Variable", "Event=check-sync") in sent


async def test_restart_sends_service_control_body():
    with FakeAmi(endpoints={"1001"}) as ami:
        async with AmiClient(settings(ami)) as client:
            assert (await client.pjsip_notify("1001", "restart")).ok
    variables = [value for key, value in ami.actions_named("PJSIPNotify")[0] if key == "Variable"]
    assert variables == ["Event=service-control", "Content-Type=text/plain", "Content=action=restart", "Content="]


async def test_login_refused():
    with FakeAmi() as ami:
        with pytest.raises(AmiError, match="AMI login as 'tf' refused: Authentication failed"):
            await AmiClient(settings(ami, secret="wrong")).connect()


async def test_connection_refused_fails_fast_and_does_not_retry():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(AmiError, match=f"cannot connect to AMI at 127.0.0.1:{port}"):
        await AmiClient(AmiSettings(port=port, username="tf", timeout=2)).connect()
    assert time.monotonic() - started < 1.5


async def test_no_reconnect_after_the_peer_hangs_up():
    # panoramisk would reconnect every 2 s forever; the wrapper must not.
    with FakeAmi(close_after_login=True) as ami:
        client = AmiClient(settings(ami))
        await client.connect()
        await asyncio.sleep(2.5)
        client.close()
        assert ami.connections == 1


async def test_silent_peer_times_out():
    with FakeAmi(answer_login=False) as ami:
        started = time.monotonic()
        with pytest.raises(AmiError, match="no answer to AMI login"):
            await AmiClient(settings(ami, timeout=0.5)).connect()
        assert time.monotonic() - started < 1.5
    with FakeAmi(answer_actions=False) as ami:
        async with AmiClient(settings(ami, timeout=0.5)) as client:
            result = await client.pjsip_notify("1001")
    assert not result.ok and result.message == "no response within 0.5 s"


async def test_header_injection_is_refused():
    with FakeAmi(endpoints={"1001"}) as ami:
        async with AmiClient(settings(ami)) as client:
            with pytest.raises(AmiError, match="not an endpoint name"):
                await client.pjsip_notify("1001\r\nAction: Originate")
            with pytest.raises(AmiError, match="line break"):
                await client.send({"Action": "Reload", "Module": "x\r\nAction: Originate"})
    assert ami.actions_named("Originate") == [] and ami.actions_named("Reload") == []
    with pytest.raises(AmiError, match="no AMI username"):
        AmiClient(AmiSettings())


def test_cli_event_names_match_the_wrapper():
    assert tuple(NOTIFY_EVENTS) == NOTIFY_EVENT_NAMES


# --- the commands ---------------------------------------------------------------------------

INVENTORY = (SITE + phone_toml("0019E8F490AD", "7961", "Desk1", [{"extension": "1001", "display_name": "A"},
                                                                  {"extension": "1011", "display_name": "A2"}])
             + phone_toml("0019E8F490AE", "7961", None, [{"extension": "1002", "display_name": "B"}])
             + phone_toml("0019E8F490AF", "7911", None, [{"extension": "1003", "display_name": "C"}]))


def env(ami: FakeAmi) -> dict[str, str]:
    return {"TELEFEATURES_AMI_HOST": "127.0.0.1", "TELEFEATURES_AMI_PORT": str(ami.port),
            "TELEFEATURES_AMI_USERNAME": "tf", "TELEFEATURES_AMI_SECRET": "s3cret",
            "TELEFEATURES_AMI_TIMEOUT": "2"}


def notified(ami: FakeAmi) -> list[str]:
    return [dict(a)["Endpoint"] for a in ami.actions_named("PJSIPNotify")]


def test_notify_command_tells_selected_phones_once_each(write_inventory):
    inventory = write_inventory(INVENTORY)
    with FakeAmi(endpoints={"1001", "1002", "1003"}) as ami:
        result = CliRunner().invoke(cli, ["provision", "notify", str(inventory), "--phones", "0019.E8F4.90AD",
                                          "--phones", "00:19:e8:f4:90:af"], env=env(ami))
    assert result.exit_code == 0, result.output
    assert notified(ami) == ["1001", "1003"]  # first line only: one NOTIFY per phone
    assert "told     00:19:e8:f4:90:ad (endpoint 1001): check-sync" in result.output
    assert "notify check-sync: 2 phone(s) told, 0 failed" in result.output


def test_notify_command_reports_failures_and_exits_1(write_inventory):
    inventory = write_inventory(INVENTORY)
    # Asterisk lists a contact for 1002 but then cannot NOTIFY it
    with FakeAmi(endpoints={"1001", "1003"}, registered={"1001", "1002", "1003"}) as ami:
        result = CliRunner().invoke(cli, ["provision", "notify", str(inventory), "--event", "restart"], env=env(ami))
    assert result.exit_code == 1
    assert notified(ami) == ["1001", "1002", "1003"]
    assert "FAILED   00:19:e8:f4:90:ae (endpoint 1002): Unable to retrieve endpoint 1002" in result.output
    assert "notify restart: 2 phone(s) told, 1 failed" in result.output


def test_notify_command_says_unregistered_phones_were_not_told(write_inventory):
    # (was: "3 phone(s) told, 0 failed" with no phone registered: PJSIPNotify
    # answers Success for an endpoint without a contact)
    inventory = write_inventory(INVENTORY)
    with FakeAmi(endpoints={"1001", "1002", "1003"}, registered=set()) as ami:
        result = CliRunner().invoke(cli, ["provision", "notify", str(inventory)], env=env(ami))
    assert result.exit_code == 1
    assert notified(ami) == []
    assert "notify check-sync: 0 phone(s) told, 0 failed, 3 not told (not registered)" in result.output
    assert ("NOT TOLD 00:19:e8:f4:90:ae (endpoint 1002): not told: Asterisk has no contact for this endpoint "
            "(the phone is not registered)") in result.output
    with FakeAmi(endpoints={"1001", "1002", "1003"}, registered={"1001", "1003"}) as ami:
        result = CliRunner().invoke(cli, ["provision", "notify", str(inventory)], env=env(ami))
    assert result.exit_code == 1
    assert notified(ami) == ["1001", "1003"]
    assert "notify check-sync: 2 phone(s) told, 0 failed, 1 not told (not registered)" in result.output


def test_notify_command_flags_override_env_and_bad_login_tells_nobody(write_inventory):
    inventory = write_inventory(INVENTORY)
    with FakeAmi(endpoints={"1001"}) as ami:
        result = CliRunner().invoke(cli, ["provision", "notify", str(inventory), "--ami-secret", "nope"],
                                    env=env(ami))
    assert result.exit_code == 1
    assert "AMI login as 'tf' refused" in result.output and "no phone was told" in result.output
    assert notified(ami) == []


def test_notify_command_rejects_unknown_phones(write_inventory):
    inventory = write_inventory(INVENTORY)
    with FakeAmi() as ami:
        result = CliRunner().invoke(cli, ["provision", "notify", str(inventory), "--phones",
                                          "0019E8F49999,zz"], env=env(ami))
    assert result.exit_code == 1
    assert "0019E8F49999: not in the inventory" in result.output and "'zz' is not a MAC address" in result.output
    assert ami.actions == []


def test_build_notify_tells_only_changed_phones_after_reloading_pjsip(tmp_path, write_inventory):
    root, pjsip = tmp_path / "tftp", tmp_path / "phones.conf"
    root.mkdir()
    args = ["provision", "build", "--tftp-root", str(root), "--pjsip", str(pjsip), "--notify"]
    with FakeAmi(endpoints={"1001", "1002", "1003"}) as ami:
        first = CliRunner().invoke(cli, [*args, str(write_inventory(INVENTORY))], env=env(ami))
        assert first.exit_code == 0, first.output
        # New phones are not registered yet: nothing to tell on the first build.
        assert notified(ami) == [] and "nobody told" in first.output
        changed = INVENTORY.replace('display_name = "B"', 'display_name = "Bea"')
        second = CliRunner().invoke(cli, [*args, str(write_inventory(changed))], env=env(ami))
        assert second.exit_code == 0, second.output
        assert notified(ami) == ["1002"]
        assert [dict(a)["Module"] for a in ami.actions_named("Reload")] == ["res_pjsip.so"]
        assert ami.actions.index(ami.actions_named("Reload")[0]) < ami.actions.index(
            ami.actions_named("PJSIPNotify")[0])
        third = CliRunner().invoke(cli, [*args, str(write_inventory(changed))], env=env(ami))
        assert third.exit_code == 0 and notified(ami) == ["1002"] and "nobody told" in third.output


def test_build_notify_does_not_notify_when_reload_fails(tmp_path, write_inventory):
    root, pjsip = tmp_path / "tftp", tmp_path / "phones.conf"
    root.mkdir()
    args = ["provision", "build", "--tftp-root", str(root), "--pjsip", str(pjsip)]
    assert CliRunner().invoke(cli, [*args, str(write_inventory(INVENTORY))]).exit_code == 0
    changed = INVENTORY.replace('display_name = "B"', 'display_name = "Bea"')
    with FakeAmi(endpoints={"1002"}, reload_ok=False) as ami:
        result = CliRunner().invoke(cli, [*args, "--notify", str(write_inventory(changed))], env=env(ami))
    assert result.exit_code == 1
    assert "reload res_pjsip.so: FAILED" in result.output and notified(ami) == []
