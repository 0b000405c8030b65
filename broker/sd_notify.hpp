// sd_notify: tells a supervising systemd about the server's state (Type=notify units),
// without libsystemd: one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET (a
// path, or an abstract name written with a leading '@'). Without that variable (not run
// by systemd, or Type=simple) it does nothing. Errors are ignored: supervision must never
// stop the server.
#pragma once

#include <string_view>

namespace respq::broker {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...", lines joined by '\n'). Returns
// whether a datagram was sent.
bool sd_notify(std::string_view state);

}  // namespace respq::broker
