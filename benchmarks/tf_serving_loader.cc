// Loads a SavedModel the way TF Serving does (tensorflow::LoadSavedModel with the "serve" tag)
// and answers requests on stdin, one at a time, feeding each SignatureDef's tensor names.
//
// Usage: tf_serving_loader MODEL_DIR
// First line out: {"loaded":true,"load_ms":..,"rss_kb":..,"signatures":{name:{"inputs":[..],
// "outputs":[..]}}}, or {"loaded":false,"error":".."} and exit 1.
// Each request in: a line "SIGNATURE REPEAT INPUTS", then per input a line "KEY COUNT" and
// COUNT strings, each a line with its byte length followed by exactly that many bytes and "\n".
// Each answer out: one JSON line, {"ok":true,"ms":[per repeat],"outputs":{key:{"dtype":..,
// "shape":[..],"values":[..]}}} or {"ok":false,"code":"INVALID_ARGUMENT","error":".."}.
// A failed request never ends the process: the next one is served, as TF Serving would.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/public/session.h"

namespace {

std::string Escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

long RssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string TensorJson(const tensorflow::Tensor& tensor) {
  std::ostringstream out;
  out << "{\"dtype\":\"" << tensorflow::DataTypeString(tensor.dtype()) << "\",\"shape\":[";
  for (int d = 0; d < tensor.dims(); ++d) out << (d ? "," : "") << tensor.dim_size(d);
  out << "],\"values\":[";
  const int64_t n = tensor.NumElements();
  out.precision(9);
  for (int64_t i = 0; i < n; ++i) {
    if (i) out << ",";
    switch (tensor.dtype()) {
      case tensorflow::DT_FLOAT:
        out << tensor.flat<float>()(i);
        break;
      case tensorflow::DT_BOOL:
        out << (tensor.flat<bool>()(i) ? "true" : "false");
        break;
      case tensorflow::DT_INT64:
        out << tensor.flat<int64_t>()(i);
        break;
      case tensorflow::DT_INT32:
        out << tensor.flat<int32_t>()(i);
        break;
      case tensorflow::DT_STRING:
        out << "\"" << Escape(std::string(tensor.flat<tensorflow::tstring>()(i))) << "\"";
        break;
      default:
        out << "null";
    }
  }
  out << "]}";
  return out.str();
}

std::string Error(const std::string& code, const std::string& message) {
  return "{\"ok\":false,\"code\":\"" + code + "\",\"error\":\"" + Escape(message) + "\"}";
}

bool ReadInputs(int inputs, std::map<std::string, tensorflow::Tensor>* feeds) {
  for (int i = 0; i < inputs; ++i) {
    std::string key;
    long count;
    if (!(std::cin >> key >> count)) return false;
    std::cin.ignore(1);
    tensorflow::Tensor tensor(tensorflow::DT_STRING, tensorflow::TensorShape({count}));
    for (long j = 0; j < count; ++j) {
      size_t length;
      if (!(std::cin >> length)) return false;
      std::cin.ignore(1);
      std::string bytes(length, '\0');
      std::cin.read(&bytes[0], static_cast<std::streamsize>(length));
      std::cin.ignore(1);
      tensor.flat<tensorflow::tstring>()(j) = bytes;
    }
    (*feeds)[key] = tensor;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: tf_serving_loader MODEL_DIR" << std::endl;
    return 2;
  }
  tensorflow::SavedModelBundle bundle;
  tensorflow::SessionOptions session_options;
  tensorflow::RunOptions run_options;
  const auto started = std::chrono::steady_clock::now();
  // tag_constants.h is not in the wheel: "serve" is kSavedModelTagServe.
  tensorflow::Status status =
      tensorflow::LoadSavedModel(session_options, run_options, argv[1], {"serve"}, &bundle);
  const double load_ms = std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - started).count();
  if (!status.ok()) {
    std::cout << "{\"loaded\":false,\"error\":\"" << Escape(status.ToString()) << "\"}"
              << std::endl;
    return 1;
  }
  std::ostringstream header;
  header << "{\"loaded\":true,\"load_ms\":" << load_ms << ",\"rss_kb\":" << RssKb()
         << ",\"signatures\":{";
  bool first = true;
  for (const auto& [name, signature] : bundle.meta_graph_def.signature_def()) {
    header << (first ? "" : ",") << "\"" << Escape(name) << "\":{\"inputs\":[";
    first = false;
    bool first_key = true;
    for (const auto& [key, info] : signature.inputs()) {
      header << (first_key ? "" : ",") << "\"" << Escape(key) << "\"";
      first_key = false;
    }
    header << "],\"outputs\":[";
    first_key = true;
    for (const auto& [key, info] : signature.outputs()) {
      header << (first_key ? "" : ",") << "\"" << Escape(key) << "\"";
      first_key = false;
    }
    header << "]}";
  }
  header << "}}";
  std::cout << header.str() << std::endl;

  std::string name;
  int repeat, inputs;
  while (std::cin >> name >> repeat >> inputs) {
    std::cin.ignore(1);
    std::map<std::string, tensorflow::Tensor> feeds;
    if (!ReadInputs(inputs, &feeds)) {
      std::cout << Error("INVALID_ARGUMENT", "truncated request") << std::endl;
      return 1;
    }
    const auto& signatures = bundle.meta_graph_def.signature_def();
    auto found = signatures.find(name);
    if (found == signatures.end()) {
      std::cout << Error("FAILED_PRECONDITION", "no signature " + name) << std::endl;
      continue;
    }
    const tensorflow::SignatureDef& signature = found->second;
    std::vector<std::pair<std::string, tensorflow::Tensor>> feed_tensors;
    std::string missing;
    for (const auto& [key, info] : signature.inputs()) {
      auto feed = feeds.find(key);
      if (feed == feeds.end()) {
        missing = key;
        break;
      }
      feed_tensors.emplace_back(info.name(), feed->second);
    }
    if (!missing.empty() || feeds.size() != static_cast<size_t>(signature.inputs().size())) {
      std::cout << Error("INVALID_ARGUMENT", "inputs do not match signature " + name)
                << std::endl;
      continue;
    }
    std::vector<std::string> output_keys, output_names;
    for (const auto& [key, info] : signature.outputs()) {
      output_keys.push_back(key);
      output_names.push_back(info.name());
    }
    std::vector<tensorflow::Tensor> outputs;
    std::vector<double> times;
    for (int r = 0; r < repeat && status.ok(); ++r) {
      outputs.clear();
      const auto start = std::chrono::steady_clock::now();
      status = bundle.session->Run(run_options, feed_tensors, output_names, {}, &outputs,
                                   nullptr);
      times.push_back(std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start).count());
    }
    if (!status.ok()) {
      std::cout << Error(absl::StatusCodeToString(status.code()), std::string(status.message()))
                << std::endl;
      status = tensorflow::Status();
      continue;
    }
    std::ostringstream answer;
    answer << "{\"ok\":true,\"ms\":[";
    for (size_t i = 0; i < times.size(); ++i) answer << (i ? "," : "") << times[i];
    answer << "],\"outputs\":{";
    for (size_t i = 0; i < outputs.size(); ++i) {
      answer << (i ? "," : "") << "\"" << Escape(output_keys[i]) << "\":" << TensorJson(outputs[i]);
    }
    answer << "}}";
    std::cout << answer.str() << std::endl;
  }
  return 0;
}
