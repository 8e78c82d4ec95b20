// AtomicFile: write a file so that readers see either the old file or the complete new one, never a
// torn write: bytes go to a temp file in the same folder, which is fsynced and renamed over the target
// (then the folder is fsynced). If commit() is never reached, the destructor removes the temp file.
#pragma once
#include <cstddef>
#include <string>

namespace wick::io {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates the temp file; throws wick::Error naming path
  ~AtomicFile();                                 // removes the temp file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // all n bytes or a wick::Error
  void commit();                           // fsync, close, rename over path, fsync the folder
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace wick::io
