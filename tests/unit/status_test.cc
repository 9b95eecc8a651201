#include "daxstore/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace daxstore {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  DAXSTORE_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(Status, CarriesKindMessageAndContext) {
  Status s = FromErrno(ENOENT, "cannot open /x").WithContext("mapping");
  EXPECT_EQ(s.kind(), ErrorKind::kNotFound);
  EXPECT_EQ(s.sys_errno(), ENOENT);
  EXPECT_EQ(s.message(), "mapping: cannot open /x: No such file or directory");
  EXPECT_EQ(FromErrno(EOPNOTSUPP, "m").kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(FromErrno(EBUSY, "m").kind(), ErrorKind::kBusy);
  EXPECT_EQ(FromErrno(ENOSPC, "m").kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(FromErrno(EIO, "m").kind(), ErrorKind::kIoError);
}

TEST(Result, PropagatesErrorsThroughAssignOrReturn) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "3 is odd");
  EXPECT_EQ(Quarter(5).status().message(), "5 is odd");
}

}  // namespace
}  // namespace daxstore
