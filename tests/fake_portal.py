"""A small fake xdg-desktop-portal on a private session bus: the real bus name, object path,
interfaces, method signatures and the Request/Response pattern of org.freedesktop.portal.Screenshot
and org.freedesktop.portal.GlobalShortcuts, plus a control interface for tests
(org.lumen.FakePortal: Press/Release a bound shortcut, read what was bound).

    python -m tests.fake_portal BUS_ADDRESS SCREENSHOT.png [--no-shortcuts]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from jeepney import DBusAddress, HeaderFields, MessageType, message_bus, new_error, new_method_return, new_signal
from jeepney.io.blocking import open_dbus_connection

PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
SCREENSHOT = "org.freedesktop.portal.Screenshot"


def main(address: str, picture: str, shortcuts: bool = True) -> None:
    conn = open_dbus_connection(bus=address)
    conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.portal.Desktop"))
    session, bound, closed = "", [], []

    def respond(msg, token: str, results: dict) -> None:  # noqa: ANN001
        sender = msg.header.fields[HeaderFields.sender].lstrip(":").replace(".", "_")
        request = f"{PATH}/request/{sender}/{token}"
        conn.send(new_method_return(msg, "o", (request,)))
        conn.send(new_signal(DBusAddress(request, interface="org.freedesktop.portal.Request"), "Response",
                             "ua{sv}", (0, results)))

    while True:
        msg = conn.receive()
        if msg.header.message_type is not MessageType.method_call:
            continue
        fields = msg.header.fields
        interface, member = fields.get(HeaderFields.interface), fields.get(HeaderFields.member)
        if (interface, member) == ("org.freedesktop.DBus.Properties", "Get"):
            if msg.body[0] == SCREENSHOT or (msg.body[0] == SHORTCUTS and shortcuts):
                conn.send(new_method_return(msg, "v", (("u", 1),)))
            else:
                conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownInterface", "s", ("no",)))
        elif (interface, member) == (SCREENSHOT, "Screenshot"):
            parent, options = msg.body
            out = Path(tempfile.mkdtemp()) / "Screenshot.png"
            shutil.copy(picture, out)
            respond(msg, options["handle_token"][1], {"uri": ("s", out.as_uri())})
        elif (interface, member) == (SHORTCUTS, "CreateSession") and shortcuts:
            (options,) = msg.body
            sender = fields[HeaderFields.sender].lstrip(":").replace(".", "_")
            session = f"{PATH}/session/{sender}/{options['session_handle_token'][1]}"
            respond(msg, options["handle_token"][1], {"session_handle": ("o", session)})
        elif (interface, member) == (SHORTCUTS, "BindShortcuts"):
            got_session, wanted, parent, options = msg.body
            bound[:] = [(sid, {k: v[1] for k, v in props.items()}) for sid, props in wanted]
            answer = [(sid, {"description": props["description"],
                             "trigger_description": ("s", props["preferred_trigger"][1])}) for sid, props in wanted]
            respond(msg, options["handle_token"][1], {"shortcuts": ("a(sa{sv})", answer)})
        elif (interface, member) == ("org.freedesktop.portal.Session", "Close"):
            closed.append(fields[HeaderFields.path])
            conn.send(new_method_return(msg))
        elif interface == "org.lumen.FakePortal" and member in ("Press", "Release"):
            name = "Activated" if member == "Press" else "Deactivated"
            conn.send(new_signal(DBusAddress(PATH, interface=SHORTCUTS), name, "osta{sv}",
                                 (session, msg.body[0], 0, {})))
            conn.send(new_method_return(msg))
        elif interface == "org.lumen.FakePortal" and member == "State":
            conn.send(new_method_return(msg, "s", (json.dumps({"bound": bound, "closed": closed,
                                                              "session": session}),)))
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"{interface}.{member}",)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--no-shortcuts" not in sys.argv)
