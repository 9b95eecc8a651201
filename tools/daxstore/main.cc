// daxstore: persistent-memory namespaces, mappings and images.
#include <cstdio>

#include "commands.h"
#include "output.h"

namespace daxstore::cli {
namespace {
// The command table: one entry per noun.
struct Noun {
  void (*add)(CLI::App&);
};
constexpr Noun kNouns[] = {{AddMapCommands},        {AddBenchCommands},
                           {AddListCommands},       {AddNamespaceCommands},
                           {AddRegionCommands},     {AddEmulateCommands},
                           {AddImageCommands},      {AddServeCommands},
                           {AddServeVhostCommands}, {AddVmArgsCommands}};
}  // namespace
}  // namespace daxstore::cli

int main(int argc, char** argv) {
  using namespace daxstore::cli;
  AcceptProgressSignal();
  CLI::App app{"daxstore: persistent-memory mappings, namespaces and images"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the verb
  for (const auto& noun : kNouns) noun.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Failure& f) {
    EndProgressLine();
    std::fprintf(stderr, "daxstore: %s\n", f.status.message().c_str());
    return f.exit_code;
  }
  return 0;
}
