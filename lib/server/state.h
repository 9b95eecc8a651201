// ImageServer's insides (include/daxstore/image_server.h): the open image,
// the export table and the threads that serve it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daxstore/image_server.h"
#include "daxstore/vhost_blk.h"
#include "mirror/job.h"

namespace daxstore {

// A vhost-user-blk export: its own handle on the volume, its server and
// the thread running it.
struct VhostExport {
  ServedExport spec;
  std::unique_ptr<Image> handle;
  std::unique_ptr<VhostBlkServer> server;
  std::thread thread;
};

struct ImageServer::State {
  ImageServer* owner = nullptr;  // whose Handle the control socket calls
  ImageServerOptions options;
  std::shared_ptr<Platform> os;
  DiskLocation location;
  Image image;           // a handle on the default volume; owns the engine
  std::string abs_path;  // location.path made absolute (the greeting)

  mutable std::mutex mu;  // guards everything below
  bool started = false;
  std::set<std::string> nbd_hidden;  // volumes export-remove took off NBD
  std::map<std::string, std::unique_ptr<VhostExport>> vhost;  // by volume

  // Mirror jobs by volume (one each); the last one's status stays until
  // a new mirror of the volume replaces it. Guarded by mirror_mu alone,
  // which no one holds while a job completes or cancels.
  std::mutex mirror_mu;
  std::map<std::string, std::shared_ptr<mirror::Job>> mirrors;

  int stop_fd = -1;  // signalled by Stop
  int control_fd = -1;
  std::thread control_thread;

  explicit State(Image img) : image(std::move(img)) {}

  // Starts one vhost-user-blk export (creates its socket). Caller holds mu.
  Status StartVhost(const ServedExport& e);
  // Stops one and removes its socket. Caller holds mu.
  void StopVhost(VhostExport& e);
  // Whether `volume` is live in the image.
  bool VolumeExists(const std::string& volume) const;
  // The control socket's accept loop (its own thread).
  void ControlLoop();
  void ServeControlConnection(int fd);
};

}  // namespace daxstore
