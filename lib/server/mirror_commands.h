// The control channel's mirror commands (lib/server/mirror_commands.cc).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "server/state.h"

namespace daxstore {

// A mirror command failed: its reply carries the Status.
struct MirrorCommandError {
  Status status;
};

bool IsMirrorCommand(const std::string& cmd);
// Runs one; throws MirrorCommandError. A mirror-complete waits until the
// job has completed or failed.
nlohmann::json ExecuteMirrorCommand(ImageServer::State& s,
                                    const std::string& cmd,
                                    const nlohmann::json& args);

}  // namespace daxstore
