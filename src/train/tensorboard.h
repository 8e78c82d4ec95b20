// TensorBoard scalars without TensorFlow: an event file (events.out.tfevents.<time>.<host>.<pid>.wick) of
// TFRecord records, each  uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)
// (little endian), whose data is a tensorflow.Event protobuf encoded by hand:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// The first record carries file_version "brain.Event:2", as TensorBoard's readers expect.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace wick {

// CRC-32C (Castagnoli, reflected 0x82F63B78), and TFRecord's mask of it.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t masked_crc32c(const void* data, size_t n);

// The protobuf bytes of an Event holding one scalar (file_version empty: none).
std::string tb_scalar_event(const std::string& tag, float value, int64_t step, double wall_time);
std::string tb_version_event(double wall_time);
// One TFRecord around data.
std::string tfrecord(const std::string& data);

class TensorBoardWriter {
 public:
  // Creates dir and a new event file in it (a resumed run adds a file; TensorBoard reads them all).
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;
  void scalar(const std::string& tag, double value, int64_t step);  // flushed: a crash keeps what was logged
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  FILE* f_ = nullptr;
};

}  // namespace wick
