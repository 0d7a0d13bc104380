import ArgumentParser
import XinlianCore
import XinlianCredit
import XinlianCrypto

// Options whose values form a closed set take the type itself: ArgumentParser then lists the accepted values, taken
// from `allCases`, in `--help` and in its refusal of any other value.
extension CryptoSuiteID: ExpressibleByArgument {}
extension InstitutionRole: ExpressibleByArgument {}
extension QueryPurpose: ExpressibleByArgument {}
