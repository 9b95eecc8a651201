// The daxstore nbdkit plugin's parameters, parsed into what ImageServer
// takes (kept apart from nbdkit's callbacks so the parsing is plain C++).
#pragma once

#include <string>

#include "daxstore/image_server.h"
#include "daxstore/status.h"

namespace daxstore::nbdkit_plugin {

struct Config {
  ImageServerOptions server;   // disk, vhost exports, control socket
  std::string default_volume;  // volume=: the default export ("" : base)
  bool parallel = false;       // threads=parallel
  std::string announce;        // announce=: printed once serving
};

// One key=value. Fails with a message naming the accepted values.
Status Apply(Config* c, const std::string& key, const std::string& value);
// After the last key: the image was given, and so on.
Status Complete(Config* c);

// Tells systemd the server is ready (READY=1) when it started us as a
// Type=notify service; nothing otherwise.
void NotifyReady();

extern const char kHelp[];

}  // namespace daxstore::nbdkit_plugin
