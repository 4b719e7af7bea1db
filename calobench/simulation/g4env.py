"""Geant4 environment for geant4_pybind 0.1.3 (Geant4 11.4.p01) and the EM physics choice.

Two physics options, recorded in every file:
- ``G4EmStandardPhysics_option4``: the stock list, used when ``G4LEDATA`` points at a real
  G4EMLOW folder (the normal case where the Geant4 data sets are installed);
- ``EmStandardNoData``: a data-free EM list (no G4EMLOW needed) built from the C++ symbols the
  geant4_pybind extension exports, for air-gapped machines and CI: photoelectric
  (G4PEEffectFluoModel), Compton (G4KleinNishinaCompton), conversion (G4BetheHeitler5DModel),
  e+- multiple scattering (Urban), ionisation, bremsstrahlung (G4eBremsstrahlungRelModel at
  all energies) and e+ annihilation. Rayleigh scattering is left out.

``setup_env`` must run before ``import geant4_pybind``; the empty stand-in data folders live in
a writable cache folder (``~/.cache/calobench/geant4-nodata`` or ``$CALOBENCH_CACHE``).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from calobench.errors import CalobenchError

WHEEL_VERSION = "0.1.3"
STANDARD_LIST = "G4EmStandardPhysics_option4"
NODATA_LIST = "EmStandardNoData (data-free G4 EM models via ctypes)"

_DATA_VARS = ("G4NEUTRONHPDATA", "G4LEVELGAMMADATA", "G4RADIOACTIVEDATA", "G4PARTICLEXSDATA",
              "G4PIIDATA", "G4REALSURFACEDATA", "G4SAIDXSDATA", "G4ABLADATA", "G4INCLDATA",
              "G4CHANNELINGDATA", "G4LEDATA")

#: every C++ symbol the data-free list calls (mangled, Itanium ABI, libstdc++ cxx11 strings)
SYMBOLS = {
    "helper": "_ZN19G4PhysicsListHelper20GetPhysicsListHelperEv",
    "register": "_ZN19G4PhysicsListHelper15RegisterProcessEP10G4VProcessP20G4ParticleDefinition",
    "em_set_model": "_ZN12G4VEmProcess10SetEmModelEP10G4VEmModeli",
    "eloss_set_model": "_ZN20G4VEnergyLossProcess10SetEmModelEP10G4VEmModeli",
    "msc_set_model": "_ZN21G4VMultipleScattering10SetEmModelEP11G4VMscModeli",
    "gamma": "_ZN7G4Gamma5GammaEv",
    "electron": "_ZN10G4Electron8ElectronEv",
    "positron": "_ZN10G4Positron8PositronEv",
    "phot": "_ZN21G4PhotoElectricEffectC1ERK8G4String13G4ProcessType",
    "phot_model": "_ZN19G4PEEffectFluoModelC1ERK8G4String",
    "compt": "_ZN19G4ComptonScatteringC1ERK8G4String13G4ProcessType",
    "compt_model": "_ZN21G4KleinNishinaComptonC1EPK20G4ParticleDefinitionRK8G4String",
    "conv": "_ZN17G4GammaConversionC1ERK8G4String13G4ProcessType",
    "conv_model": "_ZN21G4BetheHeitler5DModelC1EPK20G4ParticleDefinitionRK8G4String",
    "msc": "_ZN21G4eMultipleScatteringC1ERK8G4String",
    "msc_model": "_ZN15G4UrbanMscModelC1ERK8G4String",
    "ioni": "_ZN13G4eIonisationC1ERK8G4String",
    "brem": "_ZN17G4eBremsstrahlungC1ERK8G4String",
    "brem_model": "_ZN25G4eBremsstrahlungRelModelC1EPK20G4ParticleDefinitionRK8G4String",
    "annihil": "_ZN19G4eplusAnnihilationC1ERK8G4String",
}


def cache_dir() -> Path:
    """Writable cache folder of calobench (``$CALOBENCH_CACHE`` or ``~/.cache/calobench``)."""
    base = os.environ.get("CALOBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "calobench")
    return Path(base)


def has_emlow() -> bool:
    """True when G4LEDATA points at a real G4EMLOW folder (set by the user before start-up)."""
    path = os.environ.get("G4LEDATA", "")
    return bool(path) and os.path.isdir(os.path.join(path, "livermore")) and \
        os.path.isdir(os.path.join(path, "brem_SB"))


def setup_env() -> str:
    """Prepare the environment before ``import geant4_pybind``; returns the physics list to use.

    Variables the user already set are kept; the others point at empty folders under the
    cache (ENSDFSTATE gets the empty ``ENSDFSTATE.dat`` G4NuclideTable requires).
    """
    physics = STANDARD_LIST if has_emlow() else NODATA_LIST
    base = cache_dir() / "geant4-nodata"
    try:
        (base / "empty").mkdir(parents=True, exist_ok=True)
        ens = base / "ENSDFSTATE"
        ens.mkdir(exist_ok=True)
        (ens / "ENSDFSTATE.dat").touch()
        for var in _DATA_VARS:
            (base / var).mkdir(exist_ok=True)
    except OSError as exc:
        raise CalobenchError(f"{base}: cannot create the Geant4 stand-in data folders ({exc}); "
                             f"set CALOBENCH_CACHE to a writable folder") from None
    os.environ.setdefault("GEANT4_DATA_DIR", str(base / "empty"))
    os.environ.setdefault("G4ENSDFSTATEDATA", str(base / "ENSDFSTATE"))
    for var in _DATA_VARS:
        os.environ.setdefault(var, str(base / var))
    return physics


def import_geant4():
    """Set up the environment and import geant4_pybind; CalobenchError when it is missing."""
    physics = setup_env()
    try:
        import geant4_pybind
    except ImportError:
        raise CalobenchError("geant4_pybind is not installed: `pip install calobench[geant4]` "
                             f"(geant4-pybind=={WHEEL_VERSION}) to run `calobench simulate`") from None
    return geant4_pybind, physics


def geant4_version() -> str:
    """Geant4 release string, e.g. ``geant4-11-04-patch-01``."""
    g4, _ = import_geant4()
    text = str(g4.G4Version)
    return text.replace("$Name:", "").replace("$", "").replace("[MT]", "").strip()


class _NoDataEm:
    """Builds the data-free EM processes with ctypes (serial run manager only)."""

    def __init__(self) -> None:
        import geant4_pybind

        self.lib = ctypes.CDLL(geant4_pybind.__file__)
        missing = [sym for sym in SYMBOLS.values() if not hasattr(self.lib, sym)]
        if missing:
            raise CalobenchError(
                f"{geant4_pybind.__file__}: the data-free EM physics needs C++ symbol {missing[0]} "
                f"({len(missing)} missing); install geant4-pybind=={WHEEL_VERSION} "
                f"or set G4LEDATA to an installed G4EMLOW folder")
        std = ctypes.CDLL("libstdc++.so.6")
        self.operator_new = std._Znwm
        self.operator_new.restype = ctypes.c_void_p
        self.operator_new.argtypes = [ctypes.c_size_t]
        self.buffers: list = []  # strings must outlive the processes

    def fn(self, key: str, restype=None, argtypes=()):
        f = getattr(self.lib, SYMBOLS[key])
        f.restype = restype
        f.argtypes = list(argtypes)
        return f

    def string(self, text: str) -> ctypes.c_void_p:
        """A std::string (short-string layout: pointer, size, 16-byte inline buffer)."""
        raw = text.encode()
        if len(raw) >= 16:
            raise ValueError("only short names fit the inline std::string buffer")
        buf = ctypes.create_string_buffer(32)
        addr = ctypes.addressof(buf)
        ctypes.c_void_p.from_address(addr).value = addr + 16
        ctypes.c_size_t.from_address(addr + 8).value = len(raw)
        ctypes.memmove(addr + 16, raw, len(raw))
        self.buffers.append(buf)
        return ctypes.c_void_p(addr)

    def new(self, key: str, *args, size: int = 16384) -> int:
        """Heap-allocate (generously sized, zeroed) and run the C1 constructor ``key``."""
        ptr = self.operator_new(size)
        ctypes.memset(ptr, 0, size)
        ctor = self.fn(key, None, [ctypes.c_void_p] + [type(a) for a in args])
        ctor(ptr, *args)
        return ptr

    def construct(self) -> None:
        vp, em_type, null = ctypes.c_void_p, ctypes.c_int(2), ctypes.c_void_p(None)
        helper = self.fn("helper", vp)()
        register = self.fn("register", ctypes.c_bool, [vp, vp, vp])
        em_model = self.fn("em_set_model", None, [vp, vp, ctypes.c_int])
        eloss_model = self.fn("eloss_set_model", None, [vp, vp, ctypes.c_int])
        msc_model = self.fn("msc_set_model", None, [vp, vp, ctypes.c_int])
        gamma, electron, positron = (self.fn(k, vp)() for k in ("gamma", "electron", "positron"))

        phot = self.new("phot", self.string("phot"), em_type)
        em_model(phot, self.new("phot_model", self.string("PhotoElectric")), 0)
        compt = self.new("compt", self.string("compt"), em_type)
        em_model(compt, self.new("compt_model", null, self.string("Klein-Nishina")), 0)
        conv = self.new("conv", self.string("conv"), em_type)
        em_model(conv, self.new("conv_model", null, self.string("BetheHeitler5D")), 0)
        for process in (phot, compt, conv):
            if not register(helper, process, gamma):
                raise RuntimeError("Geant4 refused a gamma process")
        for particle, is_positron in ((electron, False), (positron, True)):
            msc = self.new("msc", self.string("msc"))
            msc_model(msc, self.new("msc_model", self.string("UrbanMsc")), 0)
            ioni = self.new("ioni", self.string("eIoni"))
            brem = self.new("brem", self.string("eBrem"))
            for slot in (0, 1):  # below and above 1 GeV: the analytic relativistic model
                eloss_model(brem, self.new("brem_model", null, self.string("eBremLPM")), slot)
            processes = [msc, ioni, brem]
            if is_positron:
                processes.append(self.new("annihil", self.string("annihil")))
            for process in processes:
                if not register(helper, process, particle):
                    raise RuntimeError("Geant4 refused an e+- process")


def check_nodata_symbols() -> None:
    """Raise CalobenchError now if this geant4_pybind lacks the symbols of the data-free list."""
    import_geant4()
    _NoDataEm()


def make_physics_list(physics: str):
    """A G4VModularPhysicsList object for ``physics`` (STANDARD_LIST or NODATA_LIST)."""
    g4, _ = import_geant4()

    if physics == STANDARD_LIST:
        class StandardList(g4.G4VModularPhysicsList):
            def __init__(self):
                super().__init__()
                self.RegisterPhysics(g4.G4EmStandardPhysics_option4())
        return StandardList()

    builder = _NoDataEm()

    class EmNoData(g4.G4VPhysicsConstructor):
        def __init__(self):
            super().__init__("EmNoData")

        def ConstructParticle(self):
            g4.G4Gamma.Definition()
            g4.G4Electron.Definition()
            g4.G4Positron.Definition()
            g4.G4Proton.Definition()
            g4.G4GenericIon.Definition()

        def ConstructProcess(self):
            builder.construct()

    class NoDataList(g4.G4VModularPhysicsList):
        def __init__(self):
            super().__init__()
            self.constructor = EmNoData()
            self.RegisterPhysics(self.constructor)

    return NoDataList()
