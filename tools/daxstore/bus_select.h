// The global --bus and --emulated-dir options and opening the backend they
// name. The options live on the root CLI::App, so no state is file-static.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "daxstore/emulated_bus.h"
#include "daxstore/namespace.h"

namespace daxstore::cli {

// Adds --bus and --emulated-dir to the root app once.
void AddBusOptions(CLI::App& root);

struct BusChoice {
  std::string bus = "auto";  // kernel | emulated | auto
  std::string emulated_dir;  // resolved: option, env, or the default
};

// Reads the options from the root of `cmd`'s tree.
BusChoice ReadBusChoice(const CLI::App* cmd);

// An open backend. With --bus auto it says on stderr which bus it picked,
// once the verb has succeeded: a failing verb prints only its error line.
class BackendHandle {
 public:
  BackendHandle(std::unique_ptr<NamespaceBackend> b, std::string note)
      : backend_(std::move(b)), note_(std::move(note)) {}
  ~BackendHandle();
  BackendHandle(BackendHandle&&) = default;
  NamespaceBackend* operator->() const { return backend_.get(); }
  NamespaceBackend& operator*() const { return *backend_; }
  // Says nothing on stderr after all (the verb did not use the bus).
  void DropNote() { note_.clear(); }

 private:
  std::unique_ptr<NamespaceBackend> backend_;
  std::string note_;
};

// Opens the chosen backend or throws Failure.
BackendHandle OpenBackend(const BusChoice& choice);
// Opens the chosen backend, or nothing when there is none to open.
std::optional<BackendHandle> TryOpenBackend(const BusChoice& choice);

EmulatedOptions EmulatedOptionsFor(const BusChoice& choice);

}  // namespace daxstore::cli
